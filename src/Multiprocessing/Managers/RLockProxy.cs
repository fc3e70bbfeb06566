namespace Multiprocessing;

/// <summary>
/// A reentrant lock that lives in a manager's process (Python's <c>Manager().RLock()</c>), with the members of
/// <see cref="ProcessRLock"/> through <see cref="IProcessLock"/>: the thread that holds it may acquire it again and
/// releases it as often; another thread or process waits. A holder whose process goes away releases it, and the
/// next acquirer gets an <see cref="AbandonedLockException"/>.
/// </summary>
public sealed class RLockProxy : IProcessLock, IAttachableProxy<RLockProxy>, IScopeReleaser
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal RLockProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static RLockProxy IAttachableProxy<RLockProxy>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <inheritdoc />
    public ProcessLockScope Acquire()
    {
        var thread = Environment.CurrentManagedThreadId;
        ManagerWaits.Until(wait => TryOnce(thread, wait), Timeout.InfiniteTimeSpan);
        return new ProcessLockScope(this, thread);
    }

    /// <inheritdoc />
    public bool TryAcquire() => TryOnce(Environment.CurrentManagedThreadId, 0);

    /// <inheritdoc />
    public bool TryAcquire(TimeSpan timeout)
    {
        var thread = Environment.CurrentManagedThreadId;
        return ManagerWaits.Until(wait => TryOnce(thread, wait), timeout);
    }

    /// <inheritdoc />
    /// <remarks>The lock is held for the calling thread (the one that called this method), which the returned scope releases.</remarks>
    public async ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default)
    {
        var thread = Environment.CurrentManagedThreadId;
        await ManagerWaits.UntilAsync(wait => TryOnce(thread, wait), Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        return new ProcessLockScope(this, thread);
    }

    /// <inheritdoc />
    public ValueTask<bool> TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var thread = Environment.CurrentManagedThreadId;
        return ManagerWaits.UntilAsync(wait => TryOnce(thread, wait), timeout, cancellationToken);
    }

    /// <inheritdoc />
    public void Release() => ReleaseFor(Environment.CurrentManagedThreadId);

    /// <inheritdoc />
    public override string ToString() => $"<RLockProxy object {_id} at {_client.Endpoint}>";

    void IScopeReleaser.ReleaseScope(int thread) => ReleaseFor(thread);

    private void ReleaseFor(int thread)
    {
        using var call = _client.Begin(_id, ManagerOp.RLockRelease);
        call.Write(thread);
        call.Send();
    }

    private bool TryOnce(int thread, int milliseconds)
    {
        using var call = _client.Begin(_id, ManagerOp.RLockAcquire);
        call.Write(thread);
        call.Write(milliseconds);
        return LockProxy.Taken(call.Send().ReadInt32(), "RLock", _id, _client);
    }
}
