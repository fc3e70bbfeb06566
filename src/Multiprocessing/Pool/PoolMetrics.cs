using System.Diagnostics.Metrics;

namespace Multiprocessing;

/// <summary>
/// A pool's counters, under the meter "Multiprocessing" (listen with dotnet-counters or an OpenTelemetry
/// MeterProvider). A pool given <see cref="ProcessPoolOptions.MeterFactory"/> records on a meter made by that
/// factory (so a host's or a test's listener sees exactly its pools); otherwise on one meter shared by the process.
/// </summary>
internal sealed class PoolMetrics
{
    public const string MeterName = "Multiprocessing";
    private const string MeterVersion = "1.0";

    /// <summary>The process's meter, for pools made without a factory.</summary>
    public static PoolMetrics Shared { get; } = new(new Meter(MeterName, MeterVersion));

    public static PoolMetrics For(IMeterFactory? factory) =>
        factory is null ? Shared : new(factory.Create(new MeterOptions(MeterName) { Version = MeterVersion }));

    private PoolMetrics(Meter meter)
    {
        TasksSubmitted = meter.CreateCounter<long>("multiprocessing.pool.tasks.submitted", "{task}", "Tasks (items) submitted to process pools.");
        TasksCompleted = meter.CreateCounter<long>("multiprocessing.pool.tasks.completed", "{task}", "Tasks (items) that returned a result.");
        TasksFailed = meter.CreateCounter<long>("multiprocessing.pool.tasks.failed", "{task}", "Tasks (items) that failed: threw, crashed their worker, timed out or were cancelled.");
        WorkerRestarts = meter.CreateCounter<long>("multiprocessing.pool.worker.restarts", "{process}", "Workers replaced after a crash, a timeout, MaxTasksPerChild or MaxMemoryPerChild.");
        TasksRunning = meter.CreateUpDownCounter<long>("multiprocessing.pool.tasks.in_flight", "{task}", "Tasks (items) sent to workers and not yet answered.");
    }

    public Counter<long> TasksSubmitted { get; }
    public Counter<long> TasksCompleted { get; }
    public Counter<long> TasksFailed { get; }
    public Counter<long> WorkerRestarts { get; }
    public UpDownCounter<long> TasksRunning { get; }
}
