using Orleans;
using Orleans.Runtime;

namespace Multiprocessing.Orleans;

/// <summary>
/// A process pool whose workers are the workers of a cluster's nodes (Ray's <c>ray.util.multiprocessing.Pool</c>, for
/// .NET, on Microsoft Orleans). Each node is an Orleans silo that runs a local <see cref="ProcessPool"/> (see
/// <see cref="ClusterNodeHosting.AddClusterPoolNode"/>); the driver's scheduler is the pool's own (chunking, ordered
/// results, lazy Imap, cancellation, timeouts, crash attribution), with each node's workers as slots, so a node with 4
/// workers gets twice the work of a node with 2. Code written against <see cref="IProcessPool"/> runs on one machine or
/// on many without change. A task runs at most once: one that was running on a node that died fails with a
/// <see cref="WorkerCrashedException"/> naming the node; work the node had not begun goes to other nodes.
/// </summary>
/// <example><code>
/// IProcessPool pool = new ClusterPool(clusterClient);
/// var squares = pool.Map(x => x * x, Enumerable.Range(0, 1000));
/// </code></example>
public sealed partial class ClusterPool : IProcessPool
{
    private readonly ProcessPool _pool;

    /// <summary>Connects to the nodes of the cluster <paramref name="client"/> reaches; each active silo that runs a node offers its workers as slots.</summary>
    /// <exception cref="InvalidOperationException">No silo runs a node, or a node runs another build of the application.</exception>
    public ClusterPool(IClusterClient client, ClusterPoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        options ??= new ClusterPoolOptions();
        if (options.NodeTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), options.NodeTimeout, "ClusterPoolOptions.NodeTimeout must be positive.");
        if (options.MaxRetries < 0) throw new ArgumentOutOfRangeException(nameof(options), options.MaxRetries, "ClusterPoolOptions.MaxRetries cannot be negative (0 runs each task at most once).");
        if (options.NodeCheckInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), options.NodeCheckInterval, "ClusterPoolOptions.NodeCheckInterval must be positive.");
        // A constructor, as ProcessPool's: the nodes are asked once, here, before any work is taken.
        var nodes = DiscoverAsync(client, options).GetAwaiter().GetResult();
        Nodes = [.. nodes.Select(n => n.Node)];
        var slots = nodes.SelectMany(n => Enumerable.Repeat(n.Node, n.Slots)).ToArray();
        var driver = Guid.NewGuid().ToString("N");
        var next = -1;
        // Nodes whose lanes ended because they stopped answering: a replacement lane goes to a node still up.
        var lost = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        _pool = new ProcessPool(new ProcessPoolOptions
        {
            Processes = slots.Length,
            TaskTimeout = options.TaskTimeout,
            Serializer = options.Serializer,
            Destination = "a ClusterPool node",
            MaxRetries = options.MaxRetries,
            Logger = options.Logger,
            MeterFactory = options.MeterFactory,
            WorkerStartTimeout = options.NodeTimeout * 2,
        }, (name, events, replacing) =>
        {
            var slot = slots[(int)((uint)Interlocked.Increment(ref next) % (uint)slots.Length)];
            for (var i = 0; i < slots.Length && lost.ContainsKey(slot); i++)
                slot = slots[(int)((uint)Interlocked.Increment(ref next) % (uint)slots.Length)];
            return new NodeLane(name, events, client.GetGrain<INodeGrain>(slot), slot, driver, options, node => lost[node] = true);
        });
    }

    /// <summary>The nodes this pool runs work on (their silos' addresses).</summary>
    public IReadOnlyList<string> Nodes { get; }

    /// <summary>How many tasks ran again on another node after the node running them died (see <see cref="ClusterPoolOptions.MaxRetries"/>).</summary>
    public long Retried => _pool.RetriedTasks;

    /// <summary>The number of slots: the workers of all its nodes.</summary>
    public int Processes => _pool.Processes;

    /// <inheritdoc />
    public void Dispose() => _pool.Dispose();

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _pool.DisposeAsync();

    /// <inheritdoc />
    public override string ToString() => $"<ClusterPool nodes={Nodes.Count} slots={Processes}>";

    private static async Task<List<NodeDescription>> DiscoverAsync(IClusterClient client, ClusterPoolOptions options)
    {
        var hosts = await client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(options.NodeTimeout).ConfigureAwait(false);
        var nodes = new List<NodeDescription>();
        var without = new List<string>();
        foreach (var silo in hosts.Keys)
        {
            NodeDescription node;
            try
            {
                node = await client.GetGrain<INodeGrain>(silo.ToParsableString()).Describe().WaitAsync(options.NodeTimeout).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not TimeoutException)
            {
                without.Add($"{silo} ({e.GetType().Name})");
                continue;
            }
            if (node.Build != ClusterNode.Build)
                throw new InvalidOperationException(
                    $"The node {node.Node} runs another build of the application ({node.Build}) than this driver ({ClusterNode.Build}). " +
                    "Every node must run the same build as the driver (workers run the driver's methods by their metadata): deploy the same build everywhere.");
            nodes.Add(node);
        }
        if (nodes.Count == 0)
            throw new InvalidOperationException(
                $"The cluster has no ClusterPool nodes ({hosts.Count} active silos{(without.Count > 0 ? ": " + string.Join(", ", without) : "")}). " +
                "Start nodes with silo.AddClusterPoolNode() in each silo's host.");
        return nodes;
    }
}
