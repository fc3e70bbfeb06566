namespace Multiprocessing;

/// <summary>
/// A barrier that lives in a manager's process (Python's <c>Manager().Barrier(parties)</c>), with the members of
/// <see cref="ProcessBarrier"/> through <see cref="IProcessBarrier"/>; reachable from any process that reaches the
/// manager. A party that gives up (a timeout, a cancellation) or whose process goes away while waiting breaks it for
/// the others, who get <see cref="BrokenBarrierException"/> until <see cref="Reset"/>.
/// </summary>
public sealed class BarrierProxy : IProcessBarrier, IAttachableProxy<BarrierProxy>
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal BarrierProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static BarrierProxy IAttachableProxy<BarrierProxy>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <inheritdoc />
    public int Parties => State().Parties;

    /// <inheritdoc />
    public int ParticipantsWaiting => State().Waiting;

    /// <inheritdoc />
    public bool IsBroken => State().Broken;

    /// <inheritdoc />
    public int SignalAndWait() => SignalAndWaitCore(Timeout.InfiniteTimeSpan, CancellationToken.None) ?? throw new InvalidOperationException("unreachable: an endless wait returned");

    /// <inheritdoc />
    public bool SignalAndWait(TimeSpan timeout) => SignalAndWaitCore(timeout, CancellationToken.None) is not null;

    /// <inheritdoc />
    /// <remarks>Each request to the manager blocks a thread-pool thread for up to 250 ms; the caller's thread is free.</remarks>
    public ValueTask<int> SignalAndWaitAsync(CancellationToken cancellationToken = default) =>
        new(Task.Run(() => SignalAndWaitCore(Timeout.InfiniteTimeSpan, cancellationToken) ?? throw new InvalidOperationException("unreachable: an endless wait returned"), CancellationToken.None));

    /// <inheritdoc />
    public void Abort()
    {
        using var call = _client.Begin(_id, ManagerOp.BarrierAbort);
        call.Send();
    }

    /// <inheritdoc />
    public void Reset()
    {
        using var call = _client.Begin(_id, ManagerOp.BarrierReset);
        call.Send();
    }

    /// <inheritdoc />
    public override string ToString() => $"<BarrierProxy object {_id} at {_client.Endpoint}>";

    /// <summary>This party's arrival index once the round passed; null when the time ran out (the barrier is then broken).</summary>
    private int? SignalAndWaitCore(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout != Timeout.InfiniteTimeSpan) ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        cancellationToken.ThrowIfCancellationRequested();
        var deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var slice = cancellationToken.CanBeCanceled ? 250 : ServedObject.MaxWaitMilliseconds;
        var (round, breaks, index, state) = WaitOnce(-1, -1, Slice(deadline, slice));
        while (true)
        {
            if (state == ServedBarrier.Passed) return index;
            if (state == ServedBarrier.BrokenState) throw BrokenByOther();
            if (cancellationToken.IsCancellationRequested || deadline - Environment.TickCount64 <= 0)
            {
                if (GiveUp(round, breaks) == ServedBarrier.Passed) return index;
                cancellationToken.ThrowIfCancellationRequested();
                return null;
            }
            (_, _, _, state) = WaitOnce(round, breaks, Slice(deadline, slice));
        }
    }

    private static int Slice(long deadline, int slice) => (int)Math.Clamp(deadline - Environment.TickCount64, 0, slice);

    private static BrokenBarrierException BrokenByOther() =>
        new("The manager's barrier was broken while this party waited (another party gave up, was cancelled, aborted it, reset it, or went away).");

    private (long Round, long Breaks, int Index, int State) WaitOnce(long round, long breaks, int milliseconds)
    {
        using var call = _client.Begin(_id, ManagerOp.BarrierWait);
        call.Write(round);
        call.Write(breaks);
        call.Write(milliseconds);
        var reply = call.Send();
        return (reply.ReadInt64(), reply.ReadInt64(), reply.ReadInt32(), reply.ReadInt32());
    }

    private int GiveUp(long round, long breaks)
    {
        using var call = _client.Begin(_id, ManagerOp.BarrierGiveUp);
        call.Write(round);
        call.Write(breaks);
        return call.Send().ReadInt32();
    }

    private (int Parties, int Waiting, bool Broken) State()
    {
        using var call = _client.Begin(_id, ManagerOp.BarrierState);
        var reply = call.Send();
        return (reply.ReadInt32(), reply.ReadInt32(), reply.ReadBoolean());
    }
}
