namespace Multiprocessing;

/// <summary>
/// A condition variable that lives in a manager's process (Python's <c>Manager().Condition()</c>), over a lock of its
/// own, with the members of <see cref="ProcessCondition"/> through <see cref="IProcessCondition"/>; reachable from any
/// process that reaches the manager. The lock is held by a process: wait and notify while holding it. When the process
/// that holds it goes away, the next process to take it gets an <see cref="AbandonedLockException"/> (it then holds it).
/// <code>
/// using (condition.Acquire())
///     while (!ready["go"]) condition.Wait();
/// </code>
/// </summary>
public sealed class ConditionProxy : IProcessCondition, IAttachableProxy<ConditionProxy>, IScopeReleaser
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal ConditionProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static ConditionProxy IAttachableProxy<ConditionProxy>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <inheritdoc />
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    public ProcessLockScope Acquire()
    {
        ManagerWaits.Until(TryAcquireOnce, Timeout.InfiniteTimeSpan);
        return new ProcessLockScope(this, 0);
    }

    /// <inheritdoc />
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    public bool TryAcquire(TimeSpan timeout) => ManagerWaits.Until(TryAcquireOnce, timeout);

    /// <inheritdoc />
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    public async ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default)
    {
        await ManagerWaits.UntilAsync(TryAcquireOnce, Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        return new ProcessLockScope(this, 0);
    }

    /// <inheritdoc />
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void Release()
    {
        using var call = _client.Begin(_id, ManagerOp.ConditionRelease);
        call.Send();
    }

    /// <inheritdoc />
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void Wait() => WaitCore(Timeout.InfiniteTimeSpan, CancellationToken.None);

    /// <inheritdoc />
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public bool Wait(TimeSpan timeout) => WaitCore(timeout, CancellationToken.None);

    /// <inheritdoc />
    /// <remarks>Each request to the manager blocks a thread-pool thread for up to 250 ms; the caller's thread is free.</remarks>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default) => new(WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken).AsTask());

    /// <inheritdoc />
    /// <remarks>Each request to the manager blocks a thread-pool thread for up to 250 ms; the caller's thread is free.</remarks>
    public ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        CheckTimeout(timeout);
        return new(Task.Run(() => WaitCore(timeout, cancellationToken), CancellationToken.None));
    }

    /// <inheritdoc />
    public bool WaitFor(Func<bool> predicate, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var limit = timeout ?? Timeout.InfiniteTimeSpan;
        CheckTimeout(limit);
        var deadline = limit == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)limit.TotalMilliseconds;
        var result = predicate();
        while (!result)
        {
            var left = deadline - Environment.TickCount64;
            if (left <= 0) break;
            WaitCore(deadline == long.MaxValue ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(left), CancellationToken.None);
            result = predicate();
        }
        return result;
    }

    /// <inheritdoc />
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void Notify(int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        using var call = _client.Begin(_id, ManagerOp.ConditionNotify);
        call.Write(count);
        call.Send();
    }

    /// <inheritdoc />
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void NotifyAll() => Notify(int.MaxValue);

    /// <inheritdoc />
    public override string ToString() => $"<ConditionProxy object {_id} at {_client.Endpoint}>";

    void IScopeReleaser.ReleaseScope(int thread) => Release();

    private static void CheckTimeout(TimeSpan timeout)
    {
        if (timeout != Timeout.InfiniteTimeSpan) ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
    }

    /// <summary>
    /// One wait: the first request releases the lock and queues a ticket; later ones wait on it a bounded while each
    /// (250 ms when cancellable, so cancellation is seen promptly). Giving up withdraws the ticket and takes the lock
    /// again before returning or throwing, as a condition's wait always ends holding the lock.
    /// </summary>
    private bool WaitCore(TimeSpan timeout, CancellationToken cancellationToken)
    {
        CheckTimeout(timeout);
        var deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var slice = cancellationToken.CanBeCanceled ? 250 : ServedObject.MaxWaitMilliseconds;
        var (ticket, state) = WaitOnce(0, Slice(deadline, slice));
        while (state == ServedCondition.Waiting)
        {
            if (cancellationToken.IsCancellationRequested || deadline - Environment.TickCount64 <= 0)
            {
                var notified = Withdraw(ticket);
                ManagerWaits.Until(TryAcquireOnce, Timeout.InfiniteTimeSpan);
                cancellationToken.ThrowIfCancellationRequested();
                return notified;
            }
            (ticket, state) = WaitOnce(ticket, Slice(deadline, slice));
        }
        // Notified: the lock is taken again however long that takes, as Python's wait does.
        while (state == ServedCondition.NotifiedAwaitingLock) (ticket, state) = WaitOnce(ticket, ServedObject.MaxWaitMilliseconds);
        if (state == ServedCondition.ReacquiredAbandoned) LockProxy.Taken(ServedLock.AcquiredAbandoned, "condition's lock", _id, _client);
        return true;
    }

    private static int Slice(long deadline, int slice) => (int)Math.Clamp(deadline - Environment.TickCount64, 0, slice);

    private (long Ticket, int State) WaitOnce(long ticket, int milliseconds)
    {
        using var call = _client.Begin(_id, ManagerOp.ConditionWait);
        call.Write(ticket);
        call.Write(milliseconds);
        var reply = call.Send();
        return (reply.ReadInt64(), reply.ReadInt32());
    }

    private bool Withdraw(long ticket)
    {
        using var call = _client.Begin(_id, ManagerOp.ConditionWithdraw);
        call.Write(ticket);
        return call.Send().ReadBoolean();
    }

    private bool TryAcquireOnce(int milliseconds)
    {
        using var call = _client.Begin(_id, ManagerOp.ConditionAcquire);
        call.Write(milliseconds);
        return LockProxy.Taken(call.Send().ReadInt32(), "condition's lock", _id, _client);
    }
}
