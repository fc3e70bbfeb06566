using System.Collections.Concurrent;
using System.Diagnostics;

namespace Multiprocessing.Orleans;

/// <summary>
/// The calls drivers sent a node, by driver and call id, kept until the driver says it has the answer. A message can be
/// lost on its way while both ends are up (through a gateway that died), so a driver asks again for a call it has no
/// answer to; asking again never runs a call twice: it joins the run under way or gets the answer kept.
/// </summary>
internal sealed class NodeCalls
{
    /// <summary>How long an answer the driver never confirmed is kept (a driver that went away confirms nothing).</summary>
    private static readonly TimeSpan Keep = TimeSpan.FromMinutes(10);

    private readonly ConcurrentDictionary<(string Driver, long CallId), NodeCall> _calls = new();
    private long _sweptAt = Stopwatch.GetTimestamp();

    /// <summary>What a node knows of a call (<see cref="INodeGrain.Check"/>).</summary>
    public const byte Unknown = 0, Running = 1, Answered = 2;

    /// <summary>The run of a call: started by the first request for it, joined by any later one.</summary>
    public Task<NodeReply> Run(string driver, long callId, Func<CancellationToken, Task<NodeReply>> run, CancellationToken cancellationToken)
    {
        var call = _calls.GetOrAdd((driver, callId), static _ => new NodeCall());
        return call.Join(run, cancellationToken);
    }

    /// <summary>The answer of a call this node has (waiting for it if it still runs); null when it has none (never received, or already collected).</summary>
    public Task<NodeReply>? Collect(string driver, long callId) =>
        _calls.TryGetValue((driver, callId), out var call) ? call.Answer : null;

    /// <summary>Drops the calls the driver has the answers to; and, now and then, answers nobody confirmed for long.</summary>
    public void Received(string driver, long[] callIds)
    {
        foreach (var id in callIds) _calls.TryRemove((driver, id), out _);
        var now = Stopwatch.GetTimestamp();
        var swept = Interlocked.Read(ref _sweptAt);
        if (Stopwatch.GetElapsedTime(swept, now) < TimeSpan.FromMinutes(1) || Interlocked.CompareExchange(ref _sweptAt, now, swept) != swept) return;
        foreach (var (key, call) in _calls)
            if (call.AnsweredAt is { } at && Stopwatch.GetElapsedTime(at, now) > Keep) _calls.TryRemove(key, out _);
    }

    /// <summary>Cancels the driver's calls that are running here.</summary>
    public void Cancel(string driver, long[] callIds)
    {
        foreach (var id in callIds)
            if (_calls.TryGetValue((driver, id), out var call)) call.Cancel();
    }

    /// <summary>For each call id: <see cref="Unknown"/>, <see cref="Running"/> or <see cref="Answered"/>.</summary>
    public byte[] States(string driver, long[] callIds)
    {
        var states = new byte[callIds.Length];
        for (var i = 0; i < callIds.Length; i++)
            states[i] = _calls.TryGetValue((driver, callIds[i]), out var call) ? call.AnsweredAt is null ? Running : Answered : Unknown;
        return states;
    }

    private sealed class NodeCall
    {
        private readonly CancellationTokenSource _cancel = new();
        private Task<NodeReply>? _run;

        public long? AnsweredAt { get; private set; }

        public void Cancel() => _cancel.Cancel();

        public Task<NodeReply>? Answer
        {
            get
            {
                lock (this) return _run;
            }
        }

        public async Task<NodeReply> Join(Func<CancellationToken, Task<NodeReply>> run, CancellationToken cancellationToken)
        {
            Task<NodeReply> task;
            // Started under the lock, which only its own requests take: it runs to its first wait, then the lock is free.
            lock (this) task = _run ??= Start(run);
            // Any request's cancellation cancels the run: they all ask for the same call.
            await using var registration = cancellationToken.Register(static state => ((CancellationTokenSource)state!).Cancel(), _cancel).ConfigureAwait(false);
            return await task.ConfigureAwait(false);
        }

        private async Task<NodeReply> Start(Func<CancellationToken, Task<NodeReply>> run)
        {
            try
            {
                return await run(_cancel.Token).ConfigureAwait(false);
            }
            finally
            {
                AnsweredAt = Stopwatch.GetTimestamp();
            }
        }
    }
}
