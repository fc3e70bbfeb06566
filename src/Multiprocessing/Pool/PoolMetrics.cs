using System.Diagnostics.Metrics;

namespace Multiprocessing;

/// <summary>
/// Counters under the meter "Multiprocessing" (listen with dotnet-counters or an OpenTelemetry
/// MeterProvider). One meter per process: instruments are process-global by design.
/// </summary>
internal static class PoolMetrics
{
    private static readonly Meter Meter = new("Multiprocessing", "1.0");

    public static readonly Counter<long> TasksSubmitted = Meter.CreateCounter<long>("multiprocessing.pool.tasks.submitted", "{task}", "Tasks (items) submitted to process pools.");
    public static readonly Counter<long> TasksCompleted = Meter.CreateCounter<long>("multiprocessing.pool.tasks.completed", "{task}", "Tasks (items) that returned a result.");
    public static readonly Counter<long> TasksFailed = Meter.CreateCounter<long>("multiprocessing.pool.tasks.failed", "{task}", "Tasks (items) that failed: threw, crashed their worker, timed out or were cancelled.");
    public static readonly Counter<long> WorkerRestarts = Meter.CreateCounter<long>("multiprocessing.pool.worker.restarts", "{process}", "Workers replaced after a crash, a timeout, MaxTasksPerChild or MaxMemoryPerChild.");
    public static readonly UpDownCounter<long> TasksRunning = Meter.CreateUpDownCounter<long>("multiprocessing.pool.tasks.in_flight", "{task}", "Tasks (items) sent to workers and not yet answered.");
}
