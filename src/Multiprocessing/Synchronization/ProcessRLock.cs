namespace Multiprocessing;

/// <summary>
/// A re-entrant lock across processes, like Python's <c>multiprocessing.RLock</c>: the thread that holds
/// it may take it again and must release it as many times. Owned by a (process, thread) pair: only the
/// owner releases. <see cref="AcquireAsync"/> records the calling thread as the owner and its scope
/// releases for that owner, so <c>using (await rlock.AcquireAsync())</c> works across awaits.
/// </summary>
public sealed unsafe class ProcessRLock : IProcessLock, IDisposable, IScopeReleaser
{
    internal readonly SyncBlock Block;

    /// <summary>Creates a new, unlocked re-entrant lock.</summary>
    public ProcessRLock() => Block = SyncBlock.Create("rlock");

    internal ProcessRLock(SyncBlock block) => Block = block;

    private int* Word => Block.Word(0);
    private int* OwnerThread => Block.Word(1);
    private int* Count => Block.Word(2);

    /// <summary>Takes the lock (again, if this thread holds it); dispose the result to release once.</summary>
    /// <exception cref="AbandonedLockException">The previous holder died; the lock is now held by the caller.</exception>
    public ProcessLockScope Acquire()
    {
        var thread = Environment.CurrentManagedThreadId;
        AcquireCore(thread, Deadline.Infinite, CancellationToken.None);
        return new ProcessLockScope(this, thread);
    }

    /// <summary>Takes the lock if free or already held by this thread, without waiting.</summary>
    public bool TryAcquire() => AcquireCore(Environment.CurrentManagedThreadId, Deadline.Now, CancellationToken.None);

    /// <summary>Waits at most <paramref name="timeout"/> for the lock; true when taken.</summary>
    /// <exception cref="AbandonedLockException">The previous holder died; the lock is now held by the caller.</exception>
    public bool TryAcquire(TimeSpan timeout) => AcquireCore(Environment.CurrentManagedThreadId, Deadline.After(timeout), CancellationToken.None);

    /// <summary>Waits for the lock on behalf of the calling thread without blocking a thread-pool thread; dispose the result to release.</summary>
    public ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default)
    {
        var thread = Environment.CurrentManagedThreadId;
        if (!cancellationToken.IsCancellationRequested && AcquireCore(thread, Deadline.Now, CancellationToken.None))
            return new(new ProcessLockScope(this, thread));
        return SyncApi.Offload(() => { AcquireCore(thread, Deadline.Infinite, cancellationToken); return new ProcessLockScope(this, thread); }, cancellationToken);
    }

    /// <summary>Waits at most <paramref name="timeout"/> on behalf of the calling thread without blocking a thread-pool thread.</summary>
    public ValueTask<bool> TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var thread = Environment.CurrentManagedThreadId;
        var deadline = Deadline.After(timeout);
        if (!cancellationToken.IsCancellationRequested && AcquireCore(thread, Deadline.Now, CancellationToken.None)) return new(true);
        return SyncApi.Offload(() => AcquireCore(thread, deadline, cancellationToken), cancellationToken);
    }

    /// <summary>Releases one level of ownership; the lock is free when every acquisition was released.</summary>
    /// <exception cref="SynchronizationLockException">The calling thread does not hold the lock.</exception>
    public void Release() => ReleaseFor(Environment.CurrentManagedThreadId);

    /// <summary>True when the calling thread holds the lock.</summary>
    public bool IsHeldByCurrentThread => IsOwner(Environment.CurrentManagedThreadId);

    /// <summary>How many times the holder has acquired it (0 when free).</summary>
    public int RecursionCount => LockWord.Holder(Word) == 0 ? 0 : Volatile.Read(ref *Count);

    /// <summary>The shared-memory name of the lock (for diagnostics).</summary>
    public string Name => Block.Name;

    /// <summary>Releases this handle; the creator's handle also unlinks the lock's name.</summary>
    public void Dispose() => Block.Dispose();

    void IScopeReleaser.ReleaseScope(int thread) => ReleaseFor(thread);

    // Only the owner writes OwnerThread and Count, and it clears OwnerThread before freeing the word,
    // so another thread of this process never mistakes itself for the owner.
    private bool IsOwner(int thread) => LockWord.Holder(Word) == LockWord.Me && Volatile.Read(ref *OwnerThread) == thread;

    private bool AcquireCore(int thread, Deadline deadline, CancellationToken token)
    {
        if (IsOwner(thread))
        {
            (*Count)++;
            return true;
        }
        LockWord.Outcome outcome;
        int dead = 0;
        if (LockWord.TryAcquire(Word)) outcome = LockWord.Outcome.Acquired;
        else if (deadline.HasPassed) return false;
        else
        {
            using var hold = Block.Keep();
            outcome = LockWord.Acquire(Word, deadline, token, out dead);
        }
        if (outcome == LockWord.Outcome.TimedOut) return false;
        *Count = 1;
        Volatile.Write(ref *OwnerThread, thread);
        if (outcome == LockWord.Outcome.Abandoned) throw AbandonedLockException.For("re-entrant lock", dead);
        return true;
    }

    private void ReleaseFor(int thread)
    {
        if (!IsOwner(thread)) throw SyncApi.NotHeld("re-entrant lock (by this thread)");
        if (--(*Count) > 0) return;
        Volatile.Write(ref *OwnerThread, 0);
        LockWord.Release(Word);
    }
}
