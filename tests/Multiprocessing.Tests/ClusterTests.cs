using Multiprocessing.Orleans;
using Orleans.TestingHost;

namespace Multiprocessing.Tests;

/// <summary>An in-process cluster of two silos, each a node with one worker process, shared by the fast cluster tests.</summary>
public sealed class TwoNodeCluster : IAsyncLifetime
{
    public InProcessTestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await StartAsync();

    /// <summary>Starts two silos, each a node with one worker.</summary>
    public static async Task<InProcessTestCluster> StartAsync()
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((_, silo) => silo.AddClusterPoolNode(node => node with { Workers = 1 }));
        var cluster = builder.Build();
        await cluster.DeployAsync().WaitAsync(TestSupport.Patience);
        return cluster;
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

public class ClusterTests(TwoNodeCluster nodes) : IClassFixture<TwoNodeCluster>
{
    private static int Square(int x) => x * x;

    [Fact]
    public async Task A_cluster_pool_maps_as_a_local_pool_does_for_many_chunk_sizes()
    {
        await using var cluster = new ClusterPool(nodes.Cluster.Client);
        Assert.Equal(2, cluster.Nodes.Count);
        Assert.Equal(2, cluster.Processes);
        var items = Enumerable.Range(0, 1000).ToArray();
        var expected = items.Select(Square).ToArray();
        foreach (var chunkSize in new int?[] { null, 1, 7, 1000 })
            Assert.Equal(expected, cluster.Map(Square, items, chunkSize));
        var offset = 5;
        Assert.Equal(items.Select(x => x + offset), await cluster.MapAsync(x => x + offset, items));
        Assert.Equal(expected, cluster.Imap(Square, items, 10));
        Assert.Equal(expected.Order(), cluster.ImapUnordered(Square, items, 3).Order());
        Assert.Equal(42, cluster.Apply(() => 41 + 1));
        Assert.Equal(7, await cluster.ApplyAsync(async (int x) => { await Task.Yield(); return x; }, 7));
    }

    [Fact]
    public async Task Work_spreads_over_both_nodes_and_an_exception_comes_back_as_its_type()
    {
        await using var cluster = new ClusterPool(nodes.Cluster.Client);
        var pids = cluster.Map(static (int _) => { Thread.Sleep(50); return Environment.ProcessId; }, Enumerable.Range(0, 8), chunkSize: 1);
        Assert.Equal(2, pids.Distinct().Count()); // one worker per node: two worker processes took part
        var e = Assert.Throws<InvalidOperationException>(() => cluster.Map(static (int x) => x == 3 ? throw new InvalidOperationException($"bad item {x}") : x, Enumerable.Range(0, 10)));
        Assert.Equal("bad item 3", e.Message);
        Assert.Equal([1, 2], cluster.Map(static (int x) => x, [1, 2])); // the pool goes on
    }

    [Fact]
    public async Task Code_written_against_IProcessPool_runs_on_one_machine_or_on_the_cluster()
    {
        static int[] Job(IProcessPool pool) => pool.Map(static (int x) => x + 1, Enumerable.Range(0, 100), chunkSize: 9);
        await using var local = new ProcessPool(1);
        await using var cluster = new ClusterPool(nodes.Cluster.Client);
        Assert.Equal(Job(local), Job(cluster));
    }

    [Fact]
    public async Task A_cancelled_Map_ends_on_the_nodes_too_and_the_pool_goes_on()
    {
        await using var cluster = new ClusterPool(nodes.Cluster.Client);
        // Short tasks first (their calls go to the nodes in batches), then long ones that are running when cancelled.
        cluster.Map(static (int x) => x, Enumerable.Range(0, 2000), chunkSize: 1);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        var started = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            cluster.MapAsync(static (int x) => { Thread.Sleep(x < 1000 ? 1 : 200); return x; }, Enumerable.Range(0, 1100), chunkSize: 1, cancel.Token).WaitAsync(TestSupport.Patience));
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"the cancelled Map took {started.Elapsed} to end (run out, it takes over 10 s)");
        var after = await cluster.MapAsync(static (int x) => x, [1, 2, 3]).WaitAsync(TestSupport.Patience);
        Assert.Equal([1, 2, 3], after);
    }

    [Fact]
    public async Task What_lives_on_one_machine_is_refused_at_the_call_naming_the_value()
    {
        await using var cluster = new ClusterPool(nodes.Cluster.Client);
        using var shm = SharedMemory.Create(64);
        var captured = Assert.Throws<SerializationException>(() => cluster.Apply(() => shm.Size));
        Assert.StartsWith("The captured variable 'shm' (SharedMemory) cannot travel to another process: A SharedMemory lives on this machine, and this value goes to a ClusterPool node", captured.Message);
        using var queue = new ProcessQueue<int>();
        var item = Assert.Throws<SerializationException>(() => cluster.Map((ProcessQueue<int> q) => q.Count, [queue]));
        Assert.Contains("ProcessQueue<Int32> lives on this machine", item.Message);
        using var gate = new ProcessLock();
        Assert.Contains("ProcessLock lives on this machine", Assert.Throws<SerializationException>(() => cluster.Apply(() => gate.IsLocked)).Message);
        await using var manager = await Manager.StartAsync();
        var local = manager.Dictionary<string, int>();
        Assert.Contains("a manager reached over a Unix socket", Assert.Throws<SerializationException>(() => cluster.Apply(() => local.Count)).Message);
        // Plain data goes, and the same objects still go to a local pool's workers.
        Assert.Equal(64L, cluster.Apply((long size) => size, shm.Size));
        await using var pool = new ProcessPool(1);
        Assert.Equal(64L, pool.Apply(() => shm.Size));
    }
}

public class ClusterNodeLossTests
{
    [Fact]
    public async Task A_node_that_dies_mid_Map_fails_the_Map_naming_the_node_within_15_seconds_and_nothing_hangs()
    {
        await using var cluster = await TwoNodeCluster.StartAsync();
        await using var pool = new ClusterPool(cluster.Client, new ClusterPoolOptions { NodeCheckInterval = TimeSpan.FromSeconds(1), NodeTimeout = TimeSpan.FromSeconds(2) });
        var doomed = cluster.Silos[1];
        var map = pool.MapAsync(static (int x) => { Thread.Sleep(300); return x; }, Enumerable.Range(0, 40), chunkSize: 1);
        await Task.Delay(1000);
        var killed = System.Diagnostics.Stopwatch.StartNew();
        await cluster.KillSiloAsync(doomed);
        var e = await Assert.ThrowsAsync<WorkerCrashedException>(() => map.WaitAsync(TestSupport.Patience));
        Assert.True(killed.Elapsed < TimeSpan.FromSeconds(15), $"the loss took {killed.Elapsed} to be seen");
        Assert.Contains($"the node {doomed.SiloAddress.ToParsableString()}", e.Message);
        // The surviving node still takes work.
        var survivors = await pool.MapAsync(static (int x) => x, [1, 2, 3]).WaitAsync(TestSupport.Patience);
        Assert.Equal([1, 2, 3], survivors);
    }

    [Fact]
    public async Task With_retries_a_Map_survives_a_node_that_dies_in_the_middle()
    {
        await using var cluster = await TwoNodeCluster.StartAsync();
        await using var pool = new ClusterPool(cluster.Client, new ClusterPoolOptions { NodeCheckInterval = TimeSpan.FromSeconds(1), NodeTimeout = TimeSpan.FromSeconds(2), MaxRetries = 2 });
        var map = pool.MapAsync(static (int x) => { Thread.Sleep(100); return x * 2; }, Enumerable.Range(0, 60), chunkSize: 1);
        await Task.Delay(1000);
        await cluster.KillSiloAsync(cluster.Silos[1]);
        var results = await map.WaitAsync(TestSupport.Patience);
        Assert.Equal(Enumerable.Range(0, 60).Select(x => x * 2), results); // complete and in order: what the dead node held ran again on the other
    }

    [Fact]
    public async Task Work_spreads_by_slots_a_node_with_two_workers_gets_twice_the_work_of_a_node_with_one()
    {
        var builder = new InProcessTestClusterBuilder(2);
        var configured = 0; // the first silo configured gets two workers, the second one
        builder.ConfigureSilo((_, node) => { var workers = Interlocked.Increment(ref configured) == 1 ? 2 : 1; node.AddClusterPoolNode(options => options with { Workers = workers }); });
        await using var cluster = builder.Build();
        await cluster.DeployAsync().WaitAsync(TestSupport.Patience);
        await using var pool = new ClusterPool(cluster.Client);
        Assert.Equal(3, pool.Processes);
        var workers = await pool.MapAsync(static (int _) => { Thread.Sleep(100); return Environment.ProcessId; }, Enumerable.Range(0, 60), chunkSize: 1).WaitAsync(TestSupport.Patience);
        // Three worker processes (two on one node, one on the other), each with about a third of the tasks: the node
        // of two workers ran about twice what the node of one did.
        var perWorker = workers.GroupBy(w => w).Select(g => g.Count()).Order().ToArray();
        Assert.Equal(3, perWorker.Length);
        // (Spread by node instead, the one worker of the smaller node would run 30, and the other two 15 each.)
        Assert.True(perWorker[0] >= 15 && perWorker[2] <= 25, $"tasks per worker: {string.Join(", ", perWorker)}");
    }

    [Fact]
    public async Task A_node_that_joins_during_a_Map_takes_work()
    {
        await using var cluster = await TwoNodeCluster.StartAsync();
        await using var pool = new ClusterPool(cluster.Client, new ClusterPoolOptions { NodeCheckInterval = TimeSpan.FromMilliseconds(500) });
        Assert.Equal(2, pool.Processes);
        var map = pool.MapAsync(static (int x) => { Thread.Sleep(200); return (X: x, Worker: Environment.ProcessId); }, Enumerable.Range(0, 60), chunkSize: 1);
        await Task.Delay(500);
        var joined = await cluster.StartAdditionalSiloAsync().WaitAsync(TestSupport.Patience);
        var until = DateTime.UtcNow + TestSupport.Patience;
        while (pool.Nodes.Count < 3 && DateTime.UtcNow < until) await Task.Delay(100);
        Assert.Contains(joined.SiloAddress.ToParsableString(), pool.Nodes);
        Assert.Equal(3, pool.Processes); // its one worker is a slot of the pool now
        Assert.False(map.IsCompleted, "the Map ended before the node joined: the test proves nothing");
        var results = await map.WaitAsync(TestSupport.Patience);
        Assert.Equal(Enumerable.Range(0, 60), results.Select(r => r.X));
        // The new node's worker ran part of the same Map: three worker processes took part.
        Assert.Equal(3, results.Select(r => r.Worker).Distinct().Count());
    }
}

public class NodeCallsTests
{
    [Fact]
    public async Task A_call_asked_for_twice_runs_once_and_its_answer_is_kept_until_the_driver_has_it()
    {
        var calls = new NodeCalls();
        var runs = 0;
        var release = new TaskCompletionSource();
        async Task<NodeReply> Run(CancellationToken _)
        {
            Interlocked.Increment(ref runs);
            await release.Task;
            return new NodeReply([42], null);
        }
        var first = calls.Run("driver", 7, Run, CancellationToken.None);
        var again = calls.Run("driver", 7, Run, CancellationToken.None); // a resend: joins the run under way
        Assert.Equal([NodeCalls.Running, NodeCalls.Unknown], calls.States("driver", [7, 8]));
        release.SetResult();
        Assert.Equal([42], (await first).Results);
        Assert.Equal([42], (await again).Results);
        Assert.Equal(1, runs);
        Assert.Equal(NodeCalls.Answered, calls.States("driver", [7])[0]);
        Assert.Equal([42], (await calls.Collect("driver", 7)!).Results); // an answer lost on the way is asked for again
        Assert.Equal([42], (await calls.Run("driver", 7, Run, CancellationToken.None)).Results);
        Assert.Equal(1, runs);
        calls.Received("driver", [7]);
        Assert.Null(calls.Collect("driver", 7));
        Assert.Equal(NodeCalls.Unknown, calls.States("driver", [7])[0]);
        Assert.Equal(NodeCalls.Unknown, calls.States("another driver", [7])[0]); // drivers' ids are their own
    }

    [Fact]
    public async Task Cancelling_a_call_by_id_cancels_its_run()
    {
        var calls = new NodeCalls();
        var run = calls.Run("driver", 1, async cancel => { await Task.Delay(Timeout.Infinite, cancel); return new NodeReply(null, null); }, CancellationToken.None);
        calls.Cancel("driver", [1]);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TestSupport.Patience));
    }
}
