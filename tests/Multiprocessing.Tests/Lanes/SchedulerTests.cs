using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Multiprocessing.Tests.Lanes;

/// <summary>
/// The pool's scheduler over in-memory lanes (no process is started): results, window sizing, the order in which a
/// dead lane's calls are requeued, and which call a death is pinned on. The functions run on the lanes' threads in
/// this process, so they can wait on the test's gates.
/// </summary>
public class SchedulerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static int Square(int x) => x * x;

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    public void Map_over_lanes_returns_what_a_loop_returns(int chunkSize)
    {
        var lanes = new InMemoryLanes();
        using var pool = lanes.Pool(new ProcessPoolOptions { Processes = 3 });
        var items = Enumerable.Range(0, 2_500).ToArray();
        Assert.Equal(items.Select(Square), pool.Map(Square, items, chunkSize));
        Assert.Equal(3, lanes.Made.Count);
    }

    /// <summary>Code written against the interface: it neither knows nor cares what runs the calls.</summary>
    private static async Task<int> SumOfSquares(IProcessPool pool, int n)
    {
        var squares = await pool.MapAsync(Square, Enumerable.Range(0, n));
        var total = 0;
        await foreach (var s in pool.ImapUnorderedAsync(Square, Enumerable.Range(0, n), chunkSize: 3)) total += s;
        Assert.Equal(squares.Sum(), total);
        return total + await pool.ApplyAsync(Square, 0);
    }

    [Fact]
    public async Task Code_written_against_IProcessPool_runs_on_lanes_in_memory_and_on_worker_processes()
    {
        var expected = Enumerable.Range(0, 40).Sum(x => x * x);
        await using IProcessPool inMemory = new InMemoryLanes().Pool(new ProcessPoolOptions { Processes = 2 });
        Assert.Equal(expected, await SumOfSquares(inMemory, 40).WaitAsync(Bound));
        await using IProcessPool processes = new ProcessPool(2);
        Assert.Equal(expected, await SumOfSquares(processes, 40).WaitAsync(Bound));
        Assert.Equal(2, processes.Processes);
    }

    [Fact]
    public void A_new_job_starts_with_a_window_of_two_and_learns_from_its_own_chunks()
    {
        var local = TimeSpan.FromMilliseconds(1); // this machine's workers
        var job = new ApplyJob<int>(new ShippedFunction(1, []), new MessagePackObjectSerializer());
        Assert.Equal(2, job.Window(local, 1));
        job.RecordElapsed(System.Diagnostics.Stopwatch.Frequency / 100_000); // 10 µs chunks: many in flight hide the round trip
        Assert.InRange(job.Window(local, 1), 50, 256);
        for (var i = 0; i < 20; i++) job.RecordElapsed(System.Diagnostics.Stopwatch.Frequency / 10); // 100 ms chunks: one at a time
        Assert.Equal(1, job.Window(local, 1));
        Assert.Equal(2, new ApplyJob<int>(new ShippedFunction(1, []), new MessagePackObjectSerializer()).Window(local, 1)); // nothing carried over
        // A cluster's node lane: a longer round trip to hide, and never fewer than two calls held.
        Assert.Equal(2, job.Window(TimeSpan.FromMilliseconds(20), 2));
        var shortCalls = new ApplyJob<int>(new ShippedFunction(1, []), new MessagePackObjectSerializer());
        shortCalls.RecordElapsed(System.Diagnostics.Stopwatch.Frequency / 1000); // 1 ms per call, the round trip included
        Assert.Equal(1, shortCalls.Window(local, 1)); // long for a local worker
        Assert.Equal(21, shortCalls.Window(TimeSpan.FromMilliseconds(20), 2));
    }

    [Fact]
    public void Forwarded_chunks_of_one_function_share_what_was_learned_of_its_chunks()
    {
        // One job per chunk a cluster's driver sends: each new one must not start blind, or a node's worker would
        // hold two calls at most however short they are.
        var function = new ShippedFunction(7, [], shared: true);
        var first = new ForwardedJob(function, new MessagePackObjectSerializer());
        first.RecordElapsed(System.Diagnostics.Stopwatch.Frequency / 100_000);
        Assert.InRange(new ForwardedJob(function, new MessagePackObjectSerializer()).Window(TimeSpan.FromMilliseconds(1), 1), 50, 256);
        Assert.Equal(2, new ForwardedJob(new ShippedFunction(8, [], shared: true), new MessagePackObjectSerializer()).Window(TimeSpan.FromMilliseconds(1), 1));
    }

    private static int Nap(int ms)
    {
        Thread.Sleep(ms);
        return ms;
    }

    [Fact]
    public void Heavy_items_after_thousands_of_trivial_ones_go_to_both_lanes()
    {
        var lanes = new InMemoryLanes();
        using var pool = lanes.Pool(new ProcessPoolOptions { Processes = 2 });
        pool.Map(Nap, new int[5_000], chunkSize: 1);
        var before = lanes.Made.Select(l => l.Ran.Count).ToArray();
        pool.Map(Nap, Enumerable.Repeat(20, 40), chunkSize: 1);
        var heavy = lanes.Made.Select((l, i) => l.Ran.Count - before[i]).Order().ToArray();
        // Fair share: a lane never holds more than half of what is left, so neither can take the whole job.
        Assert.Equal(40, heavy.Sum());
        Assert.True(heavy[0] >= 12, $"lanes ran {string.Join(" and ", heavy)} of 40 heavy items");
    }

    private static readonly ConcurrentDictionary<string, ManualResetEventSlim> Gates = new();
    private static readonly ConcurrentQueue<string> Order = new();

    private static string Step(string gate, string name)
    {
        Order.Enqueue(name);
        if (name == "first") Gates[gate].Wait(Bound);
        return name;
    }

    [Fact]
    public async Task A_dead_lanes_unstarted_calls_go_back_first_in_their_order_and_only_the_running_one_fails()
    {
        var gate = Guid.NewGuid().ToString();
        Gates[gate] = new ManualResetEventSlim();
        var lanes = new InMemoryLanes();
        await using var pool = lanes.Pool(new ProcessPoolOptions { Processes = 1 });
        var first = pool.ApplyAsync(Step, gate, "first");
        // The lane holds "first" (running) and "second" (sent, not begun); the rest wait in the pool's queue.
        var rest = new[] { "second", "third", "fourth" }.Select(n => pool.ApplyAsync(Step, gate, n)).ToArray();
        var lane = lanes.Made[0];
        // Killed once its code runs (a death while its arguments are read would requeue it instead: see the next test).
        Assert.True(SpinWait.SpinUntil(() => lane.Running.CallId is var id and not 0 && lane.UserCodeStarted(id), Bound));
        lane.Kill();

        var crash = await Assert.ThrowsAsync<WorkerCrashedException>(() => first.WaitAsync(Bound));
        Assert.Contains($"Worker {lane.Name} (pid {lane.Pid}) died while running this task", crash.Message);
        Assert.Equal(9, crash.Signal);
        Assert.Equal(["second", "third", "fourth"], await Task.WhenAll(rest).WaitAsync(Bound));
        Assert.Equal(2, lanes.Made.Count);
        var afterCrash = Order.Where(n => n is "second" or "third" or "fourth").ToArray();
        Assert.Equal(["second", "third", "fourth"], afterCrash); // none ran on the dead lane; all in submission order
        Gates[gate].Set();
    }

    [Fact]
    public async Task A_death_before_the_user_code_began_requeues_the_call_and_the_third_one_fails_it()
    {
        var lanes = new InMemoryLanes();
        await using var pool = lanes.Pool(new ProcessPoolOptions { Processes = 1 });

        lanes.Fault = (lane, _) => lane == lanes.Made[0] ? LaneFault.DieBeforeUserCode : LaneFault.None;
        Assert.Equal(49, await pool.ApplyAsync(Square, 7).WaitAsync(Bound)); // the next lane ran it

        lanes.Fault = (_, _) => LaneFault.DieBeforeUserCode;
        var made = lanes.Made.Count;
        var error = await Assert.ThrowsAsync<WorkerCrashedException>(() => pool.ApplyAsync(Square, 8).WaitAsync(Bound));
        Assert.StartsWith("3 workers died after taking this task and before its code began", error.Message);
        Assert.Equal(11, error.Signal);
        Assert.True(SpinWait.SpinUntil(() => lanes.Made.Count == made + 3, Bound), $"{lanes.Made.Count - made} lanes made for the call, not 3"); // and each death's replacement

        lanes.Fault = (_, _) => LaneFault.None;
        Assert.Equal(81, await pool.ApplyAsync(Square, 9).WaitAsync(Bound)); // the pool goes on
    }

    private static int Stuck(string gate)
    {
        Gates[gate].Wait(Bound);
        return 0;
    }

    [Fact]
    public async Task A_timeout_is_pinned_on_the_call_the_lane_runs_and_its_queued_calls_move_on()
    {
        var gate = Guid.NewGuid().ToString();
        Gates[gate] = new ManualResetEventSlim();
        var lanes = new InMemoryLanes();
        await using var pool = lanes.Pool(new ProcessPoolOptions { Processes = 1, TaskTimeout = TimeSpan.FromMilliseconds(300) });
        var stuck = pool.ApplyAsync(Stuck, gate);
        var next = pool.ApplyAsync(Square, 5);
        var error = await Assert.ThrowsAsync<TimeoutException>(() => stuck.WaitAsync(Bound));
        Assert.Contains($"its worker {lanes.Made[0].Name}", error.Message);
        Assert.Equal(25, await next.WaitAsync(Bound));
        Gates[gate].Set();
    }

    [Fact]
    public async Task Terminate_fails_held_and_queued_calls_and_every_lane_ends()
    {
        var gate = Guid.NewGuid().ToString();
        Gates[gate] = new ManualResetEventSlim();
        var lanes = new InMemoryLanes();
        var pool = lanes.Pool(new ProcessPoolOptions { Processes = 2 });
        var held = Enumerable.Range(0, 6).Select(_ => pool.ApplyAsync(Stuck, gate)).ToArray();
        Assert.True(SpinWait.SpinUntil(() => lanes.Made.Count(l => l.Running.CallId != 0) == 2, Bound));
        pool.Terminate();
        foreach (var task in held)
            await Assert.ThrowsAsync<ObjectDisposedException>(() => task.WaitAsync(Bound));
        Assert.True(pool.Join(Bound));
        Assert.Equal(2, lanes.Made.Count); // nothing replaced after Terminate
        Gates[gate].Set();
        pool.Dispose();
    }
}

/// <summary>A pool given a meter factory records on that factory's meter alone, so counts are exact while other pools run.</summary>
public class PoolMeterTests
{
    private static int FailOnOdd(int x) => x % 2 == 1 ? throw new InvalidOperationException($"odd {x}") : x;

    private sealed class OwnMeters : IMeterFactory
    {
        public List<Meter> Made { get; } = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
            Made.Add(meter);
            return meter;
        }

        public void Dispose()
        {
            foreach (var m in Made) m.Dispose();
        }
    }

    [Fact]
    public async Task Counts_are_exact_on_the_pools_own_meter()
    {
        using var meters = new OwnMeters();
        var counts = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => counts.AddOrUpdate(instrument.Name, value, (_, v) => v + value));
        listener.Start();

        var lanes = new InMemoryLanes();
        await using (var pool = lanes.Pool(new ProcessPoolOptions { Processes = 2, MeterFactory = meters }))
        {
            var calls = Enumerable.Range(0, 10).Select(i => pool.ApplyAsync(FailOnOdd, i)).ToArray();
            foreach (var call in calls) await Task.WhenAny(call).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal([0, 2, 4, 6, 8], pool.Map(FailOnOdd, [0, 2, 4, 6, 8], chunkSize: 2));
            lanes.Made[0].Kill();
            Assert.True(SpinWait.SpinUntil(() => counts.GetValueOrDefault("multiprocessing.pool.worker.restarts") == 1, TimeSpan.FromSeconds(20)));
        }

        Assert.Equal(PoolMetrics.MeterName, Assert.Single(meters.Made).Name);
        Assert.Equal(15, counts["multiprocessing.pool.tasks.submitted"]);
        Assert.Equal(10, counts["multiprocessing.pool.tasks.completed"]);
        Assert.Equal(5, counts["multiprocessing.pool.tasks.failed"]);
        Assert.Equal(1, counts["multiprocessing.pool.worker.restarts"]);
        Assert.Equal(0, counts["multiprocessing.pool.tasks.in_flight"]);
    }
}
