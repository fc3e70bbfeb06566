using System.Collections.Concurrent;

namespace Multiprocessing.Tests;

/// <summary>Process-wide state that a pool initializer sets in each worker.</summary>
public static class WorkerState
{
    public static string? Greeting;
    public static List<byte[]> Hoard = [];

    public static void Init(string greeting) => Greeting = greeting;
}

/// <summary>The default serializer, except that it refuses to write the number 777: a stand-in for an unserializable item.</summary>
public sealed class PickySerializer : ISerializer
{
    private readonly MessagePackObjectSerializer _inner = new();

    public void Serialize<T>(System.Buffers.IBufferWriter<byte> writer, T value)
    {
        if (value is int[] numbers && numbers.Contains(777)) throw new NotSupportedException("777 does not travel");
        _inner.Serialize(writer, value);
    }

    public T Deserialize<T>(ReadOnlyMemory<byte> data) => _inner.Deserialize<T>(data);
    public void Serialize(System.Buffers.IBufferWriter<byte> writer, object? value, Type type) => _inner.Serialize(writer, value, type);
    public object? Deserialize(ReadOnlyMemory<byte> data, Type type) => _inner.Deserialize(data, type);
}

public class PoolTests
{
    private static readonly TimeSpan Patience = TestSupport.Patience;

    private static ProcessPool NewPool(int processes = 2, Action? initializer = null, int? maxTasksPerChild = null, TimeSpan? taskTimeout = null, long? maxMemory = null) =>
        new(new ProcessPoolOptions
        {
            Processes = processes, Initializer = initializer, MaxTasksPerChild = maxTasksPerChild,
            TaskTimeout = taskTimeout, MaxMemoryPerChild = maxMemory, CancellationGracePeriod = TimeSpan.FromSeconds(1),
        });

    private static T Bounded<T>(Task<T> task) => task.WaitAsync(Patience).GetAwaiter().GetResult();

    [Fact]
    public void Map_equals_sequential_select_for_many_chunk_sizes()
    {
        using var pool = NewPool();
        var items = Enumerable.Range(-500, 1000).ToList();
        var expected = items.Select(x => x * x - 3).ToArray();
        foreach (int? size in new int?[] { null, 1, 3, 7, 100, 999, 5000 })
            Assert.Equal(expected, Bounded(pool.MapAsync((int x) => x * x - 3, items, size)));
        Assert.Empty(Bounded(pool.MapAsync((int x) => x, Array.Empty<int>())));
        Assert.Equal(2, pool.Processes);
    }

    [Fact]
    public void Large_chunks_both_ways_do_not_deadlock_the_channels()
    {
        // Chunks far larger than a socket buffer: parent and worker both write while the other writes.
        using var pool = NewPool();
        var items = Enumerable.Range(0, 2_000_000).ToArray();
        var result = Bounded(pool.MapAsync((int x) => x + 1, items));
        Assert.Equal(2_000_000, result[^1]);
        var strings = Bounded(pool.MapAsync((int x) => new string('x', 200) + x, Enumerable.Range(0, 20_000), 2_500));
        Assert.Equal(new string('x', 200) + "19999", strings[^1]);
    }

    [Fact]
    public void Map_with_a_closure_strings_and_records()
    {
        using var pool = NewPool();
        var factor = 3;
        var suffix = "!";
        var points = Enumerable.Range(0, 50).Select(i => new Point(i, "p" + i)).ToArray();
        var result = pool.Map((Point p) => new Point(p.X * factor, p.Label + suffix), points, 4);
        Assert.Equal(points.Select(p => new Point(p.X * 3, p.Label + "!")), result);
    }

    [Fact]
    public void A_capture_used_only_inside_an_iterator_local_function_travels()
    {
        using var pool = NewPool();
        var factor = 3;
        IEnumerable<int> Multiples(int n)
        {
            for (var k = 0; k < n; k++) yield return k * factor;
        }
        Assert.Equal([0, 3, 9, 18], pool.Map((int n) => Multiples(n).Sum(), [1, 2, 3, 4]));
    }

    [Fact]
    public void Workers_drop_the_captured_values_of_finished_maps()
    {
        using var pool = NewPool(processes: 1);
        for (var i = 0; i < 40; i++)
        {
            var table = new byte[1 << 20];
            table[i] = 1;
            Assert.Equal([1], pool.Map((int k) => (int)table[k], [i]));
        }
        // Forty 1 MiB captures went through one worker; it holds on to none of them.
        var held = pool.Apply(() => GC.GetTotalMemory(forceFullCollection: true));
        Assert.True(held < 20L << 20, $"the worker still holds {held >> 20} MiB");
    }

    [Fact]
    public void Starmap_and_apply_with_zero_to_four_arguments()
    {
        using var pool = NewPool();
        Assert.Equal([3, 7], pool.Starmap((int a, int b) => a + b, [(1, 2), (3, 4)]));
        Assert.Equal(["a1x", "b2y"], pool.Starmap((string a, int b, char c) => $"{a}{b}{c}", [("a", 1, 'x'), ("b", 2, 'y')]));
        Assert.Equal(42, pool.Apply(() => 42));
        Assert.Equal(6, pool.Apply((int a) => a * 2, 3));
        Assert.Equal("ab", pool.Apply((string a, string b) => a + b, "a", "b"));
        Assert.Equal(6, pool.Apply((int a, int b, int c) => a * b * c, 1, 2, 3));
        Assert.Equal(10, pool.Apply((int a, int b, int c, int d) => a + b + c + d, 1, 2, 3, 4));
        Assert.Equal(Environment.ProcessId, pool.Apply((int parent) => WorkerProcess.Parent!.Pid == parent ? parent : -1, Environment.ProcessId));
        var path = TestSupport.TempFile();
        pool.Apply((string p) => File.WriteAllText(p, "action"), path);
        Assert.Equal("action", File.ReadAllText(path));
        pool.Apply(() => { });
        pool.Apply((string p, string a, string b, string c) => File.WriteAllText(p, a + b + c), path, "x", "y", "z");
        Assert.Equal("xyz", File.ReadAllText(path));
        File.Delete(path);
        Assert.Equal(5, Bounded(pool.ApplyAsync((int a, int b) => a + b, 2, 3)));
        Bounded(pool.ApplyAsync(() => { }).ContinueWith(t => t.IsCompletedSuccessfully));
    }

    [Fact]
    public void ApplyAsync_failure_faults_only_its_own_task_with_the_original_type()
    {
        using var pool = NewPool();
        var bad = pool.ApplyAsync((int x) => x > 0 ? throw new ArgumentOutOfRangeException(nameof(x), "too big") : x, 1);
        var good = pool.ApplyAsync((int x) => x + 1, 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Bounded(bad));
        Assert.Contains("too big", e.Message);
        Assert.Equal(2, Bounded(good));
    }

    [Fact]
    public void Imap_reads_an_endless_input_lazily()
    {
        using var pool = NewPool();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i * 2), pool.Imap((int x) => x * 2, Endless()).Take(20));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i * 2), pool.Imap((int x) => x * 2, Endless(), chunkSize: 3).Take(20));
        var unordered = pool.ImapUnordered((int x) => x * 2, Enumerable.Range(0, 200), 7).ToList();
        Assert.Equal(Enumerable.Range(0, 200).Select(i => i * 2), unordered.Order());
    }

    private static IEnumerable<int> Endless()
    {
        for (var i = 0; ; i++) yield return i;
    }

    [Fact]
    public async Task ImapAsync_and_ImapUnorderedAsync_stream_results()
    {
        await using var pool = NewPool();
        var ordered = new List<int>();
        await foreach (var r in pool.ImapAsync((int x) => x + 1, Endless(), 2).WithCancellation(CancellationToken.None))
        {
            ordered.Add(r);
            if (ordered.Count == 50) break;
        }
        Assert.Equal(Enumerable.Range(1, 50), ordered);
        var unordered = new List<int>();
        await foreach (var r in pool.ImapUnorderedAsync((int x) => x + 1, Enumerable.Range(0, 100)))
            unordered.Add(r);
        Assert.Equal(Enumerable.Range(1, 100), unordered.Order());
    }

    [Fact]
    public void Imap_yields_results_before_a_failure_then_throws_it()
    {
        using var pool = NewPool();
        var seen = new List<int>();
        var e = Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (var r in pool.Imap((int x) => x == 5 ? throw new InvalidOperationException("item 5") : x, Enumerable.Range(0, 10)))
                seen.Add(r);
        });
        Assert.Equal("item 5", e.Message);
        Assert.Equal([0, 1, 2, 3, 4], seen);
    }

    [Fact]
    public void Initializer_state_is_seen_by_tasks()
    {
        var name = "hello from init";
        using var pool = NewPool(initializer: () => WorkerState.Init(name));
        Assert.All(pool.Map((int _) => WorkerState.Greeting, Enumerable.Range(0, 10), 1), g => Assert.Equal(name, g));
    }

    [Fact]
    public void Initializer_that_throws_fails_the_pool_fast()
    {
        using var pool = NewPool(initializer: () => throw new InvalidOperationException("cannot init"));
        var e = Assert.ThrowsAny<Exception>(() => Bounded(pool.MapAsync((int x) => x, Enumerable.Range(0, 10))));
        var root = e is MultiprocessingException { InnerException: { } inner } ? inner : e;
        Assert.Contains("cannot init", root.Message);
        Assert.ThrowsAny<InvalidOperationException>(() => pool.Apply(() => 1));
    }

    [Fact]
    public void MaxTasksPerChild_replaces_workers_with_new_processes()
    {
        using var pool = NewPool(maxTasksPerChild: 2);
        var pids = pool.Map((int _) => Environment.ProcessId, Enumerable.Range(0, 12), chunkSize: 1);
        Assert.True(pids.Distinct().Count() >= 6, $"only {pids.Distinct().Count()} distinct pids: {string.Join(",", pids)}");
        Assert.All(pids.GroupBy(p => p), g => Assert.True(g.Count() <= 2));
    }

    public static TheoryData<string> CrashKinds => ["stackoverflow", "failfast", "sigkill", "segfault", "exit"];

    [Theory]
    [MemberData(nameof(CrashKinds))]
    public void Crash_in_the_middle_of_a_map_fails_it_and_the_pool_keeps_working(string kind)
    {
        using var pool = NewPool();
        var e = Assert.Throws<WorkerCrashedException>(() => Bounded(pool.MapAsync((int x) => x == 7 ? Crash(kind) : x, Enumerable.Range(0, 20), chunkSize: 1)));
        Assert.NotEqual(0, e.ProcessId);
        if (kind == "sigkill") Assert.Equal(9, e.Signal);
        if (kind is "stackoverflow" or "failfast") Assert.Equal(6, e.Signal);
        if (kind == "exit") Assert.Equal(3, e.ExitCode);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => i + 1), Bounded(pool.MapAsync((int x) => x + 1, Enumerable.Range(0, 100))));
    }

    private static int Crash(string kind)
    {
        switch (kind)
        {
            case "stackoverflow": return Recurse(0);
            case "failfast": Environment.FailFast("fail fast in a pool"); return 0;
            case "sigkill": TestSupport.SigKill(Environment.ProcessId); Thread.Sleep(10_000); return 0;
            case "segfault": TestSupport.NativeSegfault(); return 0;
            default: Environment.Exit(3); return 0;
        }
    }

    private static int Recurse(int depth) => depth == int.MaxValue ? depth : Recurse(depth + 1) + 1;

    [Fact]
    public void A_task_past_TaskTimeout_fails_with_TimeoutException_and_others_go_on()
    {
        using var pool = NewPool(taskTimeout: TimeSpan.FromSeconds(4));
        var slow = pool.ApplyAsync(() => { Thread.Sleep(30_000); return 0; });
        var fast = Enumerable.Range(0, 10).Select(i => pool.ApplyAsync((int x) => x * 10, i)).ToArray();
        var e = Assert.Throws<TimeoutException>(() => Bounded(slow));
        Assert.Contains("TaskTimeout", e.Message);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * 10), fast.Select(Bounded));
        Assert.Equal(3, pool.Apply(() => 3));
    }

    [Fact]
    public void A_timeout_or_crash_is_charged_to_the_call_that_was_running_not_to_a_finished_one()
    {
        // One worker, so both calls land in it: the first finishes (its result may still be batched
        // in the worker) while the second hangs or crashes.
        var starts = TestSupport.TempFile();
        using var pool = NewPool(processes: 1, taskTimeout: TimeSpan.FromSeconds(3));
        var fast = pool.ApplyAsync(() => 1);
        var hang = pool.ApplyAsync((string path) => { File.AppendAllText(path, "start\n"); Thread.Sleep(60_000); return 2; }, starts);
        Assert.Equal(1, Bounded(fast));
        Assert.Throws<TimeoutException>(() => Bounded(hang));
        var fast2 = pool.ApplyAsync(() => 3);
        var crash = pool.ApplyAsync(() => { Environment.FailFast("crash after a finished call"); return 4; });
        Assert.Equal(3, Bounded(fast2));
        Assert.Throws<WorkerCrashedException>(() => Bounded(crash));
        Assert.Equal(5, pool.Apply(() => 5));
        Assert.Single(File.ReadAllLines(starts)); // the hanging call ran once, it was not requeued
        File.Delete(starts);
    }

    [Fact]
    public void Terminate_with_long_tasks_running_returns_within_seconds_and_fails_pending_work()
    {
        var pool = NewPool();
        var running = Enumerable.Range(0, 6).Select(_ => pool.ApplyAsync(() => { Thread.Sleep(60_000); return 1; })).ToArray();
        Thread.Sleep(500);
        var started = DateTime.UtcNow;
        pool.Terminate();
        Assert.True(pool.Join(TimeSpan.FromSeconds(10)), "workers did not exit");
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
        foreach (var t in running)
            Assert.Throws<ObjectDisposedException>(() => Bounded(t));
        Assert.Throws<ObjectDisposedException>(() => pool.Apply(() => 1));
        pool.Dispose();
    }

    [Fact]
    public void Close_lets_queued_work_finish_then_Join_returns()
    {
        var pool = NewPool();
        var tasks = Enumerable.Range(0, 8).Select(i => pool.ApplyAsync((int x) => { Thread.Sleep(50); return x; }, i)).ToArray();
        pool.Close();
        Assert.Throws<InvalidOperationException>(() => pool.Apply(() => 1));
        Assert.True(pool.Join(Patience), "Join timed out");
        Assert.Equal(Enumerable.Range(0, 8), tasks.Select(Bounded));
        pool.Dispose();
    }

    [Fact]
    public void Join_before_close_is_refused()
    {
        using var pool = NewPool(processes: 1);
        Assert.Throws<InvalidOperationException>(() => pool.Join());
    }

    [Fact]
    public async Task Cancellation_drops_queued_work_and_cancels_running_work()
    {
        await using var pool = NewPool();
        using var cts = new CancellationTokenSource();
        var map = pool.MapAsync((int _) =>
        {
            // Cooperative: observe the worker's token.
            WorkerProcess.CancellationToken.WaitHandle.WaitOne(30_000);
            return WorkerProcess.CancellationToken.IsCancellationRequested ? 1 : 0;
        }, Enumerable.Range(0, 100), chunkSize: 1, cts.Token);
        await Task.Delay(300);
        cts.CancelAfter(0);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => map.WaitAsync(Patience));
        // A task that ignores the token gets its worker killed after the grace period; the pool goes on.
        using var cts2 = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var stubborn = pool.ApplyAsync(() => { Thread.Sleep(30_000); return 0; }, cts2.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stubborn.WaitAsync(Patience));
        Assert.Equal(2, await pool.ApplyAsync(() => 2).WaitAsync(Patience));
        Assert.Equal(Enumerable.Range(0, 10), await pool.MapAsync((int x) => x, Enumerable.Range(0, 10)).WaitAsync(Patience));
    }

    [Fact]
    public void Progress_reports_every_item()
    {
        using var pool = NewPool();
        var reports = new ConcurrentQueue<MapProgress>();
        var progress = new SynchronousProgress(reports.Enqueue);
        pool.Map((int x) => x, Enumerable.Range(0, 100), 10, progress);
        Assert.Equal(10, reports.Count);
        Assert.Contains(new MapProgress(100, 100), reports);
    }

    private sealed class SynchronousProgress(Action<MapProgress> report) : IProgress<MapProgress>
    {
        public void Report(MapProgress value) => report(value);
    }

    [Fact]
    public void MaxMemoryPerChild_recycles_a_worker_that_grew_past_the_limit()
    {
        using var pool = NewPool(processes: 1, maxMemory: 300L << 20);
        var before = pool.Apply(() => Environment.ProcessId);
        pool.Apply(() =>
        {
            for (var i = 0; i < 40; i++)
            {
                var block = new byte[10 << 20];
                Array.Fill(block, (byte)1);
                WorkerState.Hoard.Add(block);
            }
        });
        var after = pool.Apply(() => Environment.ProcessId);
        Assert.NotEqual(before, after);
    }

    [Fact]
    public void A_capture_that_cannot_travel_is_refused_before_any_work_is_sent()
    {
        using var pool = NewPool(processes: 1);
        using var stream = new MemoryStream();
        var e = Assert.Throws<SerializationException>(() => pool.Map((int x) => { stream.WriteByte((byte)x); return x; }, [1, 2]));
        Assert.Contains("stream", e.Message);
        Assert.Equal(1, pool.Apply(() => 1));
    }

    [Fact]
    public void An_item_that_cannot_be_serialized_fails_the_map_at_the_call_and_the_pool_goes_on()
    {
        using var pool = new ProcessPool(new ProcessPoolOptions { Processes = 2, Serializer = new PickySerializer() });
        var e = Assert.Throws<SerializationException>(() => pool.Map((int x) => x, Enumerable.Range(0, 1000), chunkSize: 1));
        Assert.Contains("777 does not travel", e.Message);
        Assert.Equal(Enumerable.Range(0, 100), Bounded(pool.MapAsync((int x) => x, Enumerable.Range(0, 100), 1)));
    }

    [Fact]
    public void Bad_options_are_refused_with_a_clear_message()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ProcessPool(new ProcessPoolOptions { Processes = 0 }));
        Assert.Contains("Processes", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProcessPool(new ProcessPoolOptions { TaskTimeout = TimeSpan.Zero }));
        var count = Assert.Throws<ArgumentOutOfRangeException>(() => new ProcessPool(0));
        Assert.Equal("processes", count.ParamName);
        Assert.Contains("at least 1 worker process", count.Message);
        using var pool = NewPool(processes: 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Map((int x) => x, [1], chunkSize: 0));
    }

    [Fact]
    public void A_pool_of_n_workers_is_made_as_in_python()
    {
        using var pool = new ProcessPool(3);
        Assert.Equal(3, pool.Processes);
        Assert.Equal([0, 2, 4, 6], pool.Map((int x) => x * 2, Enumerable.Range(0, 4), 1));
    }

    [Fact]
    public void Workers_writing_to_stdout_do_not_disturb_results()
    {
        using var pool = NewPool();
        var result = pool.Map((int x) => { Console.WriteLine($"noise {x}"); Console.Error.WriteLine($"err {x}"); return x * 2; }, Enumerable.Range(0, 300), 5);
        Assert.Equal(Enumerable.Range(0, 300).Select(x => x * 2), result);
    }
}
