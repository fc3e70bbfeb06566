using Microsoft.Extensions.Logging;
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
    private readonly IClusterClient _client;
    private readonly ClusterPoolOptions _options;
    private readonly string _driver = Guid.NewGuid().ToString("N");
    private readonly Lock _lock = new();
    private readonly Dictionary<string, NodeSlots> _nodes = [];
    private readonly HashSet<string> _refused = []; // nodes of another build
    private readonly Dictionary<string, string> _unanswered = []; // active silos that did not answer as nodes, and why
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _watching;

    /// <summary>Connects to the nodes of the cluster <paramref name="client"/> reaches; each active silo that runs a node offers its workers as slots.</summary>
    /// <exception cref="InvalidOperationException">No silo runs a node, or a node runs another build of the application.</exception>
    public ClusterPool(IClusterClient client, ClusterPoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        options ??= new ClusterPoolOptions();
        if (options.NodeTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), options.NodeTimeout, "ClusterPoolOptions.NodeTimeout must be positive.");
        if (options.MaxRetries < 0) throw new ArgumentOutOfRangeException(nameof(options), options.MaxRetries, "ClusterPoolOptions.MaxRetries cannot be negative (0 runs each task at most once).");
        if (options.NodeCheckInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), options.NodeCheckInterval, "ClusterPoolOptions.NodeCheckInterval must be positive.");
        (_client, _options) = (client, options);
        // A constructor, as ProcessPool's: the nodes are asked once, here, before any work is taken; later ones join
        // as they come (see WatchClusterAsync).
        var nodes = DiscoverAsync(throwOnOtherBuild: true).GetAwaiter().GetResult();
        if (nodes.Count == 0)
            throw Refusal(NoNodes,
                $"The cluster has no ClusterPool nodes ({_unanswered.Count} other active silos{(_unanswered.Count > 0 ? ": " + string.Join(", ", _unanswered.Select(u => $"{u.Key} ({u.Value})")) : "")}). " +
                "Start nodes with silo.AddClusterPoolNode() in each silo's host.");
        foreach (var node in nodes) _nodes[node.Node] = new NodeSlots(node.Node, node.Slots);
        _pool = new ProcessPool(new ProcessPoolOptions
        {
            Processes = nodes.Sum(n => n.Slots),
            TaskTimeout = options.TaskTimeout,
            Serializer = options.Serializer,
            Destination = "a ClusterPool node",
            MaxRetries = options.MaxRetries,
            Logger = options.Logger,
            MeterFactory = options.MeterFactory,
            WorkerStartTimeout = options.NodeTimeout * 3 + options.NodeCheckInterval * 3, // a lane asks its node up to three times (NodeLane.ReachAsync)
            // A node's round trip goes through Orleans and three busy processes: it holds more work queued, and while
            // the queue is long, its running call and the next, so its worker does not wait for the driver between
            // tasks; at a job's end one at a time again, so no node sits idle while another has a task waiting.
            LaneLatency = TimeSpan.FromMilliseconds(20),
            MinWindowWhileQueued = 2,
        }, NewLane);
        _watching = WatchClusterAsync(_stop.Token);
    }

    /// <summary>The nodes this pool runs work on now (their silos' addresses): those it found, and those that joined since, less those lost.</summary>
    public IReadOnlyList<string> Nodes
    {
        get
        {
            lock (_lock) return [.. _nodes.Values.Where(n => !n.Lost).Select(n => n.Name)];
        }
    }

    /// <summary>How many tasks ran again on another node after the node running them died (see <see cref="ClusterPoolOptions.MaxRetries"/>).</summary>
    public long Retried => _pool.RetriedTasks;

    /// <summary>The number of slots: the workers of all its nodes.</summary>
    public int Processes => _pool.Processes;

    /// <summary>The client connection the pool made itself (<see cref="ClusterPoolNode.ConnectAsync"/>), closed with the pool.</summary>
    internal Microsoft.Extensions.Hosting.IHost? Connection { get; set; }

    /// <inheritdoc />
    public void Dispose()
    {
        _stop.Cancel();
        _pool.Dispose();
        if (Connection is { } connection) ClusterPoolNode.StopAsync(connection).GetAwaiter().GetResult();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _pool.DisposeAsync().ConfigureAwait(false);
        await _watching.ConfigureAwait(false);
        if (Connection is { } connection) await ClusterPoolNode.StopAsync(connection).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override string ToString() => $"<ClusterPool nodes={Nodes.Count} slots={Processes}>";

    /// <summary>
    /// A lane for the scheduler, on the node with the most slots free (a node with 4 workers gets twice the lanes of a
    /// node with 2); one that replaces a lost lane goes to a node still up.
    /// </summary>
    private NodeLane NewLane(string name, ILaneEvents events, bool replacing)
    {
        NodeSlots node;
        lock (_lock)
        {
            node = _nodes.Values.OrderBy(n => n.Lost).ThenByDescending(n => n.Slots - n.Lanes).ThenByDescending(n => n.Slots).First();
            node.Lanes++;
        }
        return new NodeLane(name, events, _client.GetGrain<INodeGrain>(node.Name), node.Name, _driver, _options, NodeLost, LaneEnded, Contacted);
    }

    private void NodeLost(string node)
    {
        lock (_lock)
            if (_nodes.TryGetValue(node, out var slots) && !slots.Lost)
            {
                slots.Lost = true;
                _options.Logger?.LogWarning("ClusterPool lost the node {Node}; its lanes move to the nodes still up", node);
            }
    }

    /// <summary>A lane's first contact with its node: three failures in a row and the node is taken for lost.</summary>
    private void Contacted(string node, bool reached)
    {
        bool lost;
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node, out var slots)) return;
            slots.FailedContacts = reached ? 0 : slots.FailedContacts + 1;
            lost = slots.FailedContacts >= 3;
        }
        if (lost) NodeLost(node);
    }

    private void LaneEnded(string node)
    {
        lock (_lock)
            if (_nodes.TryGetValue(node, out var slots)) slots.Lanes--;
    }

    /// <summary>Looks for nodes that joined the cluster every <see cref="ClusterPoolOptions.NodeCheckInterval"/> and gives them lanes.</summary>
    private async Task WatchClusterAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.NodeCheckInterval, stop).ConfigureAwait(false);
                foreach (var node in await DiscoverAsync(throwOnOtherBuild: false).ConfigureAwait(false))
                {
                    lock (_lock) _nodes[node.Node] = new NodeSlots(node.Node, node.Slots);
                    _options.Logger?.LogInformation("The node {Node} joined the ClusterPool with {Slots} slots", node.Node, node.Slots);
                    if (!_pool.AddLanes(node.Slots)) return;
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The cluster could not be asked this time (a gateway going away): the next round asks again.
                _options.Logger?.LogDebug(e, "ClusterPool could not look for new nodes");
            }
        }
    }

    /// <summary>The active silos that run a node and are not yet known to this pool (or refused: another build).</summary>
    private async Task<List<NodeDescription>> DiscoverAsync(bool throwOnOtherBuild)
    {
        var hosts = await _client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(_options.NodeTimeout).ConfigureAwait(false);
        var found = new List<NodeDescription>();
        foreach (var silo in hosts.Keys)
        {
            var name = silo.ToParsableString();
            lock (_lock)
                if (_nodes.ContainsKey(name) || _refused.Contains(name)) continue;
            NodeDescription node;
            try
            {
                node = await _client.GetGrain<INodeGrain>(name).Describe().WaitAsync(_options.NodeTimeout).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // A silo that runs no node (no AddClusterPoolNode), or one that joined so recently that the silo placing
                // its grain does not know it yet: asked again next round (a round is one call per such silo).
                lock (_lock) _unanswered[name] = $"{e.GetType().Name}: {e.Message}";
                _options.Logger?.LogDebug(e, "The silo {Silo} did not answer as a ClusterPool node", name);
                continue;
            }
            lock (_lock) _unanswered.Remove(name);
            if (node.Build != ClusterNode.Build)
            {
                var message = $"The node {node.Node} runs another build of the application ({node.Build}) than this driver ({ClusterNode.Build}). " +
                    "Every node must run the same build as the driver (workers run the driver's methods by their metadata): deploy the same build everywhere.";
                if (throwOnOtherBuild) throw Refusal(OtherBuild, message);
                lock (_lock) _refused.Add(name);
                _options.Logger?.LogError("{Message} The node gets no work from this pool.", message);
                continue;
            }
            found.Add(node);
        }
        return found;
    }

    /// <summary>Why a pool could not be made, in its exception's <see cref="Exception.Data"/> under <see cref="Reason"/>: <see cref="ClusterPoolNode.ConnectAsync"/> waits on the one, gives up on the other.</summary>
    internal const string Reason = "Multiprocessing.Orleans.Reason", NoNodes = "no nodes", OtherBuild = "another build";

    private static InvalidOperationException Refusal(string reason, string message) => new(message) { Data = { [Reason] = reason } };

    /// <summary>A node's slots and the lanes this pool has on it.</summary>
    private sealed class NodeSlots(string name, int slots)
    {
        public string Name { get; } = name;
        public int Slots { get; } = slots;
        public int Lanes { get; set; }
        public bool Lost { get; set; }
        public int FailedContacts { get; set; }
    }
}
