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

            // As an out-of-memory killer would: every replacement dies as it appears, for 3 s and at least four of
            // them (on a loaded machine they come slower). Three in a row used to break the pool for good
            // ("exited before it connected (killed by signal 9)").
            var waiting = pool.ApplyAsync(static () => 1);
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(3) || (killed.Count < 5 && clock.Elapsed < TimeSpan.FromSeconds(30)))
            {
                foreach (var child in PoolChildren())
                    if (killed.Add(child)) TestSupport.SigKill(child);
                Thread.Sleep(1);
            }
            if (killed.Count < 5) throw new InvalidOperationException($"only {killed.Count - 1} replacements appeared in 30 s");

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

    [Fact]
    public async Task A_task_whose_worker_died_before_its_code_began_goes_back_to_the_queue_and_completes()
    {
        var marker = TestSupport.TempFile();
        var item = new SlowToArrive { Marker = marker, Value = 21 };
        File.WriteAllText(marker, ""); // after the item is built here: only a worker reading it sleeps
        using var pool = new ProcessPool(1);
        // Its arguments are read, its code has not begun: the worker sleeps inside the deserializer, and is killed there.
        var result = pool.MapAsync((SlowToArrive x) => x.Value * 2, [item], chunkSize: 1);
        Assert.True(TestSupport.Eventually(() => File.Exists(marker + ".pid"), TestSupport.Patience), "the worker never took the task");
        var pid = int.Parse(File.ReadAllText(marker + ".pid"), System.Globalization.CultureInfo.InvariantCulture);
        File.Delete(marker);
        File.Delete(marker + ".pid");
        TestSupport.SigKill(pid);
        // Once, such a task failed with WorkerCrashedException naming the killed pid.
        var doubled = await result.WaitAsync(TestSupport.Patience);
        Assert.Equal(new[] { 42 }, doubled);
    }

    [Fact]
    public async Task A_task_that_kills_every_worker_before_its_code_begins_still_ends_with_a_clear_exception()
    {
        using var pool = new ProcessPool(2);
        var error = await Assert.ThrowsAsync<WorkerCrashedException>(() => pool.ApplyAsync((CrashesOnArrival x) => x.Value, new CrashesOnArrival()).WaitAsync(TestSupport.Patience));
        Assert.StartsWith("3 workers died after taking this task and before its code began", error.Message);
        Assert.Contains("while its arguments were read", error.Message);
        Assert.Equal(6, error.Signal); // FailFast aborts
        Assert.Equal(5, pool.Apply(static () => 5)); // and the pool goes on
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
                string commandLine;
                try { commandLine = File.ReadAllText($"/proc/{pid}/cmdline"); }
                catch (IOException) { continue; }
                if (!commandLine.Contains("multiprocessing-resource-tracker", StringComparison.Ordinal)) yield return pid;
            }
        }
    }
}

/// <summary>An argument whose deserialization sleeps while <see cref="Marker"/> names an existing file (it writes its pid next to it).</summary>
public sealed class SlowToArrive
{
    private int _value;

    public string Marker { get; set; } = "";

    public int Value
    {
        get => _value;
        set
        {
            _value = value;
            if (Marker.Length == 0 || !File.Exists(Marker)) return;
            // Written whole, then renamed: the test reads it as soon as it exists.
            File.WriteAllText(Marker + ".tmp", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            File.Move(Marker + ".tmp", Marker + ".pid");
            Thread.Sleep(TimeSpan.FromSeconds(60));
        }
    }
}

/// <summary>An argument whose deserialization ends the process that reads it (serializing it, in the parent, is harmless).</summary>
public sealed class CrashesOnArrival
{
    public int Value
    {
        get => 1;
        set => Environment.FailFast("CrashesOnArrival was deserialized");
    }
}
