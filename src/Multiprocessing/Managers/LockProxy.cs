namespace Multiprocessing;

/// <summary>
/// A lock that lives in a manager's process (Python's <c>Manager().Lock()</c>): not reentrant, and
/// like Python's any process may release it. When the process that holds it goes away (its connections
/// to the manager close: it exited or died), the next acquirer takes the lock and gets an
/// <see cref="AbandonedLockException"/>, as with <see cref="ProcessLock"/>: the state it guards may be half updated.
/// <code>using (managerLock.Acquire()) { ... }</code>
/// </summary>
public sealed class LockProxy : IProcessLock, IAttachableProxy<LockProxy>, IScopeReleaser
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal LockProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static LockProxy IAttachableProxy<LockProxy>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <summary>Blocks until the lock is held; dispose the result to release it.</summary>
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    public ProcessLockScope Acquire()
    {
        ManagerWaits.Until(TryAcquireOnce, Timeout.InfiniteTimeSpan);
        return new ProcessLockScope(this, 0);
    }

    /// <summary>Takes the lock if it is free (one request, no waiting in the manager); true when taken (then call <see cref="Release"/>).</summary>
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    public bool TryAcquire() => TryAcquireOnce(0);

    /// <summary>Tries to take the lock within <paramref name="timeout"/>; true when it is held (then call <see cref="Release"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    public bool TryAcquire(TimeSpan timeout) => ManagerWaits.Until(TryAcquireOnce, timeout);

    /// <summary>Waits for the lock on a thread-pool thread, which each request to the manager blocks for up to 250 ms (the calling thread is free); dispose the result to release it.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    public async ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default)
    {
        await ManagerWaits.UntilAsync(TryAcquireOnce, Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        return new ProcessLockScope(this, 0);
    }

    /// <summary>As <see cref="TryAcquire(TimeSpan)"/>, on a thread-pool thread (the calling thread is free); true when taken.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    public ValueTask<bool> TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ManagerWaits.UntilAsync(TryAcquireOnce, timeout, cancellationToken);

    /// <summary>Releases the lock.</summary>
    /// <exception cref="SynchronizationLockException">The lock is not held.</exception>
    public void Release()
    {
        using var call = _client.Begin(_id, ManagerOp.LockRelease);
        call.Send();
    }

    /// <inheritdoc />
    public override string ToString() => $"<LockProxy object {_id} at {_client.Endpoint}>";

    private bool TryAcquireOnce(int milliseconds)
    {
        using var call = _client.Begin(_id, ManagerOp.LockAcquire);
        call.Write(milliseconds);
        var reply = call.Send();
        return Taken(reply.ReadInt32(), "lock", _id, _client);
    }

    /// <summary>What a manager's lock answered to an acquire: taken or not, or taken from a holder that went away (thrown).</summary>
    internal static bool Taken(int answer, string kind, long id, ManagerClient client) => answer switch
    {
        ServedLock.NotAcquired => false,
        ServedLock.Acquired => true,
        _ => throw new AbandonedLockException(
            $"The manager's {kind} (object {id} at {client.Endpoint}) was held by a process that went away (exited or died) " +
            "without releasing it. It is now held by this caller: check the state it protects, then release it as usual."),
    };

    void IScopeReleaser.ReleaseScope(int thread) => Release();
}
