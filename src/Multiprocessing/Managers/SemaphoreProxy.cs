namespace Multiprocessing;

/// <summary>
/// A semaphore that lives in a manager's process (Python's <c>Manager().Semaphore(n)</c> and <c>BoundedSemaphore(n)</c>),
/// with the members of <see cref="ProcessSemaphore"/> through <see cref="IProcessSemaphore"/>; reachable from any
/// process that reaches the manager. As in Python, any process may release it.
/// </summary>
public sealed class SemaphoreProxy : IProcessSemaphore, IAttachableProxy<SemaphoreProxy>, IScopeReleaser
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal SemaphoreProxy(ManagerClient client, long id, int? maximum)
    {
        _client = client;
        _id = id;
        MaximumCount = maximum;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static SemaphoreProxy IAttachableProxy<SemaphoreProxy>.Attach(ManagerClient client, long objectId) => new(client, objectId, null);

    /// <inheritdoc />
    public int CurrentCount
    {
        get
        {
            using var call = _client.Begin(_id, ManagerOp.SemaphoreCount);
            return call.Send().ReadInt32();
        }
    }

    /// <inheritdoc />
    /// <remarks>Known to the proxy that made it; a proxy that arrived from another process reports null.</remarks>
    public int? MaximumCount { get; }

    /// <inheritdoc />
    public ProcessLockScope Acquire()
    {
        ManagerWaits.Until(TryOnce, Timeout.InfiniteTimeSpan);
        return new ProcessLockScope(this, 0);
    }

    /// <inheritdoc />
    public bool TryAcquire() => TryOnce(0);

    /// <inheritdoc />
    public bool TryAcquire(TimeSpan timeout) => ManagerWaits.Until(TryOnce, timeout);

    /// <inheritdoc />
    public async ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default)
    {
        await ManagerWaits.UntilAsync(TryOnce, Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        return new ProcessLockScope(this, 0);
    }

    /// <inheritdoc />
    public ValueTask<bool> TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ManagerWaits.UntilAsync(TryOnce, timeout, cancellationToken);

    /// <inheritdoc />
    public int Release(int releaseCount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(releaseCount, 1);
        using var call = _client.Begin(_id, ManagerOp.SemaphoreRelease);
        call.Write(releaseCount);
        return call.Send().ReadInt32();
    }

    /// <inheritdoc />
    public override string ToString() => $"<SemaphoreProxy object {_id} at {_client.Endpoint}>";

    void IScopeReleaser.ReleaseScope(int thread) => Release();

    private bool TryOnce(int milliseconds)
    {
        using var call = _client.Begin(_id, ManagerOp.SemaphoreAcquire);
        call.Write(milliseconds);
        return call.Send().ReadBoolean();
    }
}
