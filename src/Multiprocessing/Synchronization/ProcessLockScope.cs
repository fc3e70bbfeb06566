namespace Multiprocessing;

/// <summary>Returned by <c>Acquire</c>: disposing it releases what was acquired, so <c>using (x.Acquire()) { }</c> scopes a hold.</summary>
public readonly struct ProcessLockScope : IDisposable
{
    private readonly IScopeReleaser? _owner;
    private readonly int _thread;

    internal ProcessLockScope(IScopeReleaser owner, int thread)
    {
        _owner = owner;
        _thread = thread;
    }

    /// <summary>Releases the lock or semaphore (once per scope; a default scope does nothing).</summary>
    public void Dispose() => _owner?.ReleaseScope(_thread);
}

internal interface IScopeReleaser
{
    void ReleaseScope(int thread);
}
