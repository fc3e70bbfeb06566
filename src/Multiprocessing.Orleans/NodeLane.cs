using System.Collections.Concurrent;
using System.Diagnostics;
using MessagePack;
using Microsoft.Extensions.Logging;

namespace Multiprocessing.Orleans;

/// <summary>
/// One slot of a node, as a lane of the pool's scheduler (see <see cref="ILane"/>): the chunks the scheduler gives it
/// go to the node's grain, which runs them on the node's own process pool, and their outcomes come back as the
/// scheduler's events. A node with N workers is N such lanes, so work spreads by free slots. The node is pinged while
/// the lane lives; a node that stops answering ends its lanes, and the scheduler then fails or requeues what they held.
/// Calls a lane holds run at once on the node, but their answers reach the scheduler in the order they were sent, as
/// a worker's do.
/// </summary>
internal sealed class NodeLane(string name, ILaneEvents events, INodeGrain node, string nodeName, string driver, ClusterPoolOptions options, Action<string> nodeLost, Action<string> laneEnded, Action<string, bool> contacted) : ILane
{
    private readonly object _gate = new();
    private readonly object _reporting = new();
    private readonly Queue<Call> _sent = new(); // in the order sent; answered from the front
    private readonly Dictionary<long, Call> _byId = [];
    private readonly ConcurrentQueue<int> _forgets = new();
    private readonly ConcurrentQueue<long> _received = new();
    private readonly TaskCompletionSource<(ExitStatus Status, string? Why)> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _exitRequested;
    private string? _endedBecause;

    public string Name { get; } = $"{name} on {nodeName}";

    public int Pid => 0;

    public void Run()
    {
        // Asked more than once (ReachAsync): the first way to a node can fail while the node is up (through a gateway
        // that died, until the client stops choosing it). A node that still does not answer is not lost at once: one
        // that just joined may not be known yet to the silo the call goes through. The pool starts another lane after a pause (a timeout, not a crash, so it never
        // gives up while other lanes work), which goes to a node with free slots; the pool stops trying a node after
        // three failed first contacts in a row.
        var unreachable = ReachAsync().GetAwaiter().GetResult();
        contacted(nodeName, unreachable is null);
        if (unreachable is { } e)
        {
            laneEnded(nodeName);
            events.FailedToStart(new TimeoutException($"The node {nodeName} did not answer ({e.GetType().Name}: {e.Message})", e));
            return;
        }
        if (!events.Started())
        {
            laneEnded(nodeName);
            events.Exited(new ExitStatus(0, null));
            return;
        }
        events.Ready();
        using var watch = new CancellationTokenSource();
        _ = WatchNodeAsync(watch.Token);
        var (status, why) = _ended.Task.GetAwaiter().GetResult();
        watch.Cancel();
        _endedBecause = why;
        lock (_gate)
            foreach (var call in _sent) call.Cancel.Cancel();
        laneEnded(nodeName); // before the scheduler replaces this lane, so the replacement counts it gone
        events.Exited(status);
    }

    public void Send(IReadOnlyList<Chunk> chunks, bool thenExit)
    {
        while (_forgets.TryDequeue(out var id)) _ = ForgetAsync(id);
        var calls = new Call[chunks.Count];
        for (var i = 0; i < calls.Length; i++)
        {
            var call = calls[i] = new Call(chunks[i]);
            lock (_gate)
            {
                _sent.Enqueue(call);
                _byId[call.Chunk.CallId] = call;
            }
        }
        // Given several at once, tasks are short (the window is wide only then): one message carries many.
        if (calls.Length >= BatchFrom)
            foreach (var batch in calls.Chunk(BatchMost)) _ = SendBatchAsync(batch);
        else
            foreach (var call in calls) _ = SendAsync(call);
        if (thenExit)
        {
            _exitRequested = true;
            lock (_gate)
                if (_sent.Count == 0) _ended.TrySetResult((new ExitStatus(0, null), null));
        }
    }

    public bool HasForgets => !_forgets.IsEmpty;

    public void Forget(int functionId) => _forgets.Enqueue(functionId);

    public void Cancel(IReadOnlyCollection<long> callIds)
    {
        var batched = new List<long>();
        lock (_gate)
            foreach (var id in callIds)
                if (_byId.TryGetValue(id, out var call))
                {
                    call.Cancel.Cancel(); // a call of its own: Orleans passes the cancellation on
                    if (call.Batched) batched.Add(id);
                }
        if (batched.Count > 0) _ = CancelOnNodeAsync([.. batched]);
    }

    private async Task CancelOnNodeAsync(long[] callIds)
    {
        try
        {
            await node.Cancel(driver, callIds).WaitAsync(options.NodeTimeout).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A node that cannot be told is gone or going: the lane's check ends what it held.
        }
    }

    public void Kill() => _ended.TrySetResult((new ExitStatus(null, 9), "its lane was stopped by the pool"));

    public (long CallId, long Since) Running
    {
        get
        {
            lock (_gate) return _sent.TryPeek(out var first) ? (first.Chunk.CallId, first.Since) : (0, 0);
        }
    }

    // Whether a lost call's code had begun on the node is unknown here: it counts as begun, so it is not run twice
    // unless the user asked for retries (at most once by default).
    public bool UserCodeStarted(long callId) => true;

    public long? MemoryInUse() => null;

    public WorkerCrashedException Crashed(string message, ExitStatus status) =>
        new($"{message}: the node {nodeName} {_endedBecause ?? "went away"}", 0, status.Code, status.Signal, []);

    private string? Key(Chunk chunk) => chunk.Job.Function.Id == 0 ? null : $"{driver}:{chunk.Job.Function.Id}";

    /// <summary>
    /// Sends a call to the node and notes its answer. A call that fails on its way while the node answers is sent
    /// again, as is one the node reports answered or never received while no answer came (its message or answer was
    /// lost through a gateway that died): the node runs a call once however often it is asked (<see cref="NodeCalls"/>).
    /// </summary>
    private async Task SendAsync(Call call)
    {
        var chunk = call.Chunk;
        NodeReply reply;
        while (true)
        {
            if (call.Answered) return; // answered meanwhile (asked again, see ResendAsync): never run twice
            try
            {
                reply = await node.Run(driver, chunk.CallId, Key(chunk), chunk.Job.Function.Definition, call.Payload, chunk.Count, TakeReceived(), call.Cancel.Token).ConfigureAwait(false);
                break;
            }
            catch (OperationCanceledException) when (call.Cancel.IsCancellationRequested)
            {
                Answered(call, default, new OperationCanceledException(call.Cancel.Token));
                return;
            }
            catch (Exception e)
            {
                if (call.Answered) return;
                if (!_ended.Task.IsCompleted && await ReachAsync().ConfigureAwait(false) is null) continue;
                nodeLost(nodeName);
                _ended.TrySetResult((new ExitStatus(null, null), $"could not be reached ({e.GetType().Name}: {e.Message})"));
                return;
            }
        }
        Answer(call, reply);
    }

    private const int BatchFrom = 3, BatchMost = 64;

    /// <summary>
    /// Sends calls in one message and notes their answers. When the message fails on its way, each call is sent
    /// again on its own (the node runs each once, however it is asked; see <see cref="SendAsync"/>).
    /// </summary>
    private async Task SendBatchAsync(Call[] calls)
    {
        foreach (var call in calls) call.Batched = true;
        var definitions = new List<byte[]>();
        var definitionOf = new int[calls.Length];
        for (var i = 0; i < calls.Length; i++)
        {
            var definition = calls[i].Chunk.Job.Function.Definition;
            var index = definitions.FindIndex(d => ReferenceEquals(d, definition));
            if (index < 0) { index = definitions.Count; definitions.Add(definition); }
            definitionOf[i] = index;
        }
        var batch = new NodeBatch(
            [.. calls.Select(c => c.Chunk.CallId)], [.. calls.Select(c => Key(c.Chunk))], [.. definitions], definitionOf,
            [.. calls.Select(c => c.Payload)], [.. calls.Select(c => c.Chunk.Count)]);
        NodeReply[] replies;
        try
        {
            replies = await node.RunBatch(driver, batch, TakeReceived()).ConfigureAwait(false);
        }
        catch (Exception)
        {
            foreach (var call in calls)
                if (!call.Answered) _ = SendAsync(call);
            return;
        }
        for (var i = 0; i < calls.Length; i++) Answer(calls[i], replies[i]);
    }

    private void Answer(Call call, NodeReply reply)
    {
        Exception? error = null;
        if (reply.Error is { } shipped)
        {
            var reader = new MessagePackReader(shipped);
            error = ExceptionShipper.Read(ref reader);
        }
        Answered(call, reply.Results ?? ReadOnlyMemory<byte>.Empty, error);
    }

    /// <summary>The calls answered since the node was last told, for the node to stop keeping their answers.</summary>
    private long[] TakeReceived()
    {
        if (_received.IsEmpty) return [];
        var ids = new List<long>();
        while (ids.Count < 4096 && _received.TryDequeue(out var id)) ids.Add(id);
        return [.. ids];
    }

    /// <summary>
    /// Null when the node answers within <see cref="ClusterPoolOptions.NodeTimeout"/>, asked up to three times
    /// <see cref="ClusterPoolOptions.NodeCheckInterval"/> apart; otherwise why the last attempt failed.
    /// </summary>
    private async Task<Exception?> ReachAsync()
    {
        Exception? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (attempt > 0) await Task.Delay(options.NodeCheckInterval).ConfigureAwait(false);
            try
            {
                await node.Describe().WaitAsync(options.NodeTimeout).ConfigureAwait(false);
                return null;
            }
            catch (Exception e)
            {
                last = e;
            }
        }
        return last;
    }

    /// <summary>Notes a call's outcome, then reports every answered call at the front, in the order they were sent.</summary>
    private void Answered(Call call, ReadOnlyMemory<byte> results, Exception? error)
    {
        lock (_gate)
        {
            if (call.Answered) return; // asked twice (see SendAsync): the first answer counts
            call.Elapsed = Stopwatch.GetTimestamp() - call.Since;
            (call.Results, call.Error, call.Answered) = (results, error, true);
        }
        _received.Enqueue(call.Chunk.CallId);
        lock (_reporting)
        {
            while (true)
            {
                Call first;
                bool more;
                lock (_gate)
                {
                    if (!_sent.TryPeek(out first!) || !first.Answered) break;
                    _sent.Dequeue();
                    _byId.Remove(first.Chunk.CallId);
                    more = _sent.TryPeek(out var next) && next.Answered;
                }
                first.Cancel.Dispose();
                // Once the lane ended, the scheduler took back what it held: late answers are dropped.
                if (!_ended.Task.IsCompleted) events.CallDone(first.Chunk.CallId, first.Elapsed, first.Results, first.Error, refill: !more);
            }
            lock (_gate)
                if (_exitRequested && _sent.Count == 0) _ended.TrySetResult((new ExitStatus(0, null), null));
        }
    }

    private async Task ForgetAsync(int functionId)
    {
        try
        {
            await node.Forget($"{driver}:{functionId}").ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A node that cannot be told is gone or going; its pool goes with it.
        }
    }

    /// <summary>A chunk sent to the node, and its outcome once answered.</summary>
    private sealed class Call(Chunk chunk)
    {
        public Chunk Chunk { get; } = chunk;
        public byte[] Payload { get; } = chunk.Payload.ToArray();
        public int Resending;
        public bool Batched { get; set; }
        public long Since { get; } = Stopwatch.GetTimestamp();
        public CancellationTokenSource Cancel { get; } = new();
        public bool Answered { get; set; }
        public long Elapsed { get; set; }
        public ReadOnlyMemory<byte> Results { get; set; }
        public Exception? Error { get; set; }
    }

    /// <summary>
    /// Checks on the node every <see cref="ClusterPoolOptions.NodeCheckInterval"/>: one that misses
    /// <see cref="ClusterPoolOptions.NodeTimeout"/> three times in a row is taken for dead. The check also asks what the
    /// node knows of the calls sent more than a timeout ago that have no answer, and sends again those it is not running.
    /// </summary>
    private async Task WatchNodeAsync(CancellationToken stop)
    {
        var missed = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(options.NodeCheckInterval, stop).ConfigureAwait(false);
                Call[] waiting;
                var before = Stopwatch.GetTimestamp() - (long)(options.NodeTimeout.TotalSeconds * Stopwatch.Frequency);
                lock (_gate) waiting = [.. _sent.Where(c => !c.Answered && c.Since < before)];
                var states = await node.Check(driver, TakeReceived(), [.. waiting.Select(c => c.Chunk.CallId)]).WaitAsync(options.NodeTimeout, stop).ConfigureAwait(false);
                missed = 0;
                for (var i = 0; i < waiting.Length; i++)
                    if (states[i] != NodeCalls.Running && !waiting[i].Answered && Interlocked.Exchange(ref waiting[i].Resending, 1) == 0)
                        _ = ResendAsync(waiting[i], answeredOnNode: states[i] == NodeCalls.Answered);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                if (++missed < 3) continue;
                nodeLost(nodeName);
                _ended.TrySetResult((new ExitStatus(null, null), $"stopped answering ({e.GetType().Name}: {e.Message})"));
                return;
            }
        }
    }

    /// <summary>
    /// Asks again for a call whose message or answer was lost on the way: the answer the node keeps when it ran the
    /// call (never a second run: the lane may have the answer by now and told the node so), or the call itself when
    /// the node never received it.
    /// </summary>
    private async Task ResendAsync(Call call, bool answeredOnNode)
    {
        options.Logger?.LogDebug("Asking {Node} again for call {CallId}: its message or answer was lost on the way", nodeName, call.Chunk.CallId);
        if (!answeredOnNode)
        {
            await SendAsync(call).ConfigureAwait(false);
        }
        else
        {
            try
            {
                if (await node.Collect(driver, call.Chunk.CallId).ConfigureAwait(false) is { } reply) Answer(call, reply);
                else if (!call.Answered)
                    Answered(call, default, new WorkerCrashedException($"The node {nodeName} ran this task but its answer was lost on the way and is no longer kept", 0, null, null, []));
            }
            catch (Exception)
            {
                // The node is checked again at the next round; a node that stopped answering ends the lane.
            }
        }
        Volatile.Write(ref call.Resending, 0);
    }
}
