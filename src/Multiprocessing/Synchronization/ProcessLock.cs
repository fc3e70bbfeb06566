namespace Multiprocessing;

/// <summary>
/// A lock across processes, like Python's <c>multiprocessing.Lock</c>: not re-entrant, and any process
/// (or thread) may release it. Built on a futex word in shared memory holding the holder's process id;
/// waiters spin briefly, then sleep in the kernel. If the holder dies, the next acquirer gets the lock
/// and an <see cref="AbandonedLockException"/>. Captured by a worker lambda or passed as an argument,
/// it arrives as the same lock.
/// </summary>
/// <example><code>
/// using var gate = new ProcessLock();
/// var p = new WorkerProcess(() => { using (gate.Acquire()) { /* exclusive */ } });
/// </code></example>
public sealed unsafe class ProcessLock : IProcessLock, IDisposable, IScopeReleaser
{
    internal readonly SyncBlock Block;

    /// <summary>Creates a new, unlocked lock.</summary>
    public ProcessLock() => Block = SyncBlock.Create("lock");

    internal ProcessLock(SyncBlock block) => Block = block;

    private int* Word => Block.Word(0);

    /// <summary>Waits until the lock is free and takes it; dispose the result to release.</summary>
    /// <exception cref="AbandonedLockException">The previous holder died; the lock is now held by the caller.</exception>
    public ProcessLockScope Acquire()
    {
        AcquireCore(Deadline.Infinite, CancellationToken.None);
        return new ProcessLockScope(this, 0);
    }

    /// <summary>Takes the lock if it is free, without waiting.</summary>
    public bool TryAcquire() => LockWord.TryAcquire(Word);

    /// <summary>Waits at most <paramref name="timeout"/> for the lock; true when taken.</summary>
    /// <exception cref="AbandonedLockException">The previous holder died; the lock is now held by the caller.</exception>
    public bool TryAcquire(TimeSpan timeout) => AcquireCore(Deadline.After(timeout), CancellationToken.None);

    /// <summary>Waits for the lock without blocking a thread-pool thread; dispose the result to release.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="AbandonedLockException">The previous holder died; the lock is now held by the caller.</exception>
    public ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default)
    {
        if (!cancellationToken.IsCancellationRequested && TryAcquire()) return new(new ProcessLockScope(this, 0));
        return SyncApi.Offload(() => { AcquireCore(Deadline.Infinite, cancellationToken); return new ProcessLockScope(this, 0); }, cancellationToken);
    }

    /// <summary>Waits at most <paramref name="timeout"/> for the lock without blocking a thread-pool thread; true when taken.</summary>
    public ValueTask<bool> TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = Deadline.After(timeout);
        if (!cancellationToken.IsCancellationRequested && TryAcquire()) return new(true);
        return SyncApi.Offload(() => AcquireCore(deadline, cancellationToken), cancellationToken);
    }

    /// <summary>Releases the lock.</summary>
    /// <exception cref="SynchronizationLockException">The lock is not held.</exception>
    public void Release()
    {
        if (!LockWord.Release(Word)) throw SyncApi.NotHeld("lock");
    }

    /// <summary>True while some process holds the lock.</summary>
    public bool IsLocked => LockWord.Holder(Word) != 0;

    /// <summary>The process id of the holder, or null when free (for diagnostics: it may change at once).</summary>
    public int? HolderProcessId => LockWord.Holder(Word) is var pid and not 0 ? pid : null;

    /// <summary>The shared-memory name of the lock (for diagnostics).</summary>
    public string Name => Block.Name;

    /// <summary>Releases this handle; the creator's handle also unlinks the lock's name.</summary>
    public void Dispose() => Block.Dispose();

    void IScopeReleaser.ReleaseScope(int thread) => Release();

    internal bool AcquireCore(Deadline deadline, CancellationToken token)
    {
        if (!token.IsCancellationRequested && LockWord.TryAcquire(Word)) return true;
        using var hold = Block.Keep();
        switch (LockWord.Acquire(Word, deadline, token, out var dead))
        {
            case LockWord.Outcome.Acquired: return true;
            case LockWord.Outcome.Abandoned: throw AbandonedLockException.For("lock", dead);
            default: return false;
        }
    }

    internal bool IsHeldByThisProcess => LockWord.Holder(Word) == LockWord.Me;
}
