using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Multiprocessing.Tests;

public class ObservabilityTests
{
    [Fact]
    public void Pool_publishes_metrics_and_logs_worker_lifecycle()
    {
        var measurements = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Multiprocessing") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => measurements.AddOrUpdate(instrument.Name, value, (_, v) => v + value));
        listener.Start();

        var logger = new CollectingLogger();
        using (var pool = new ProcessPool(new ProcessPoolOptions { Processes = 1, Logger = logger }))
        {
            Assert.Equal(Enumerable.Range(1, 10), pool.Map((int x) => x + 1, Enumerable.Range(0, 10), 2));
            Assert.Throws<WorkerCrashedException>(() => pool.Apply(() => { Environment.FailFast("crash for the log"); return 0; }));
            Assert.Equal(1, pool.Apply(() => 1));
        }

        // Other tests run pools at the same time; this one's own numbers are lower bounds.
        Assert.True(measurements.GetValueOrDefault("multiprocessing.pool.tasks.submitted") >= 12);
        Assert.True(measurements.GetValueOrDefault("multiprocessing.pool.tasks.completed") >= 11);
        Assert.True(measurements.GetValueOrDefault("multiprocessing.pool.tasks.failed") >= 1);
        Assert.True(measurements.GetValueOrDefault("multiprocessing.pool.worker.restarts") >= 1);
        Assert.Contains(logger.Lines, l => l.Level == LogLevel.Information && l.Text.Contains("started"));
        Assert.Contains(logger.Lines, l => l.Level == LogLevel.Warning && l.Text.Contains("crashed"));
    }

    private sealed class CollectingLogger : ILogger
    {
        public ConcurrentQueue<(LogLevel Level, string Text)> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue((logLevel, formatter(state, exception)));
    }
}
