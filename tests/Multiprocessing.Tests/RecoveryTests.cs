using System.Diagnostics;

namespace Multiprocessing.Tests;

/// <summary>A pool recovers from whatever does not repeat, and says why while it cannot.</summary>
public class RecoveryTests
{
    [Fact]
    public void A_pool_whose_starting_workers_are_killed_from_outside_fails_calls_with_the_reason_and_recovers_once_they_start()
    {
        // In a process of its own, with spares off: each replacement is a fresh process that can be killed while it starts.
        var scenario = new WorkerProcess(static () =>
        {
            Environment.SetEnvironmentVariable("MULTIPROCESSING_SPARE_WORKERS", "0");
            using var pool = new ProcessPool(new ProcessPoolOptions { Processes = 1, WorkerStartTimeout = TimeSpan.FromSeconds(1) });
            var first = pool.Apply(static () => Environment.ProcessId);
            var killed = new HashSet<int> { first };
            TestSupport.SigKill(first);

            // As an out-of-memory killer would: every replacement dies as it appears, for 3 s. Three in a row
            // used to break the pool for good ("exited before it connected (killed by signal 9)").
            var waiting = pool.ApplyAsync(static () => 1);
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(3))
            {
                foreach (var child in PoolChildren())
                    if (killed.Add(child)) TestSupport.SigKill(child);
                Thread.Sleep(1);
            }
            if (killed.Count < 5) throw new InvalidOperationException($"only {killed.Count - 1} replacements appeared in 3 s");

            // The call made meanwhile ended, and says why.
            if (!((IAsyncResult)waiting).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(30))) throw new TimeoutException("a call made while no worker could start never ended");
            var error = waiting.Exception?.InnerException as WorkerCrashedException
                ?? throw new InvalidOperationException($"expected a WorkerCrashedException, got {waiting.Status} {waiting.Exception}");
            if (!error.Message.Contains("could be started for 1 s", StringComparison.Ordinal) || error.Signal != 9)
                throw new InvalidOperationException("unexpected message: " + error.Message);

            // Nothing kills them any more: the same pool takes work again.
            clock.Restart();
            while (true)
            {
                try
                {
                    if (pool.Apply(static () => 42) != 42) throw new InvalidOperationException("wrong answer");
                    break;
                }
                catch (WorkerCrashedException) when (clock.Elapsed < TimeSpan.FromSeconds(30))
                {
                    Thread.Sleep(100); // still no ready worker: calls fail fast with the reason
                }
            }
        })
        { Name = "start-kill scenario" };
        scenario.Start();
        TestSupport.JoinOrFail(scenario);
        Assert.Null(scenario.Exception);
        Assert.Equal(0, scenario.ExitCode);
    }

    /// <summary>This process's children, but for the resource tracker (which must live on).</summary>
    internal static IEnumerable<int> PoolChildren()
    {
        foreach (var task in Directory.EnumerateDirectories($"/proc/{Environment.ProcessId}/task"))
        {
            string text;
            try { text = File.ReadAllText(Path.Combine(task, "children")); }
            catch (IOException) { continue; }
            foreach (var field in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var pid = int.Parse(field, System.Globalization.CultureInfo.InvariantCulture);
                string environment;
                try { environment = File.ReadAllText($"/proc/{pid}/environ"); }
                catch (IOException) { continue; }
                if (!environment.Contains("MULTIPROCESSING_RESOURCE_TRACKER=1", StringComparison.Ordinal)) yield return pid;
            }
        }
    }
}
