namespace Multiprocessing;

/// <summary>
/// A counting semaphore across processes, like Python's <c>multiprocessing.Semaphore</c>, or
/// <c>BoundedSemaphore</c> when a maximum is given: releasing past the maximum throws
/// <see cref="SemaphoreFullException"/>. Captured by a worker lambda or passed as an argument, it arrives as the same semaphore.
/// </summary>
public sealed unsafe class ProcessSemaphore : IProcessSemaphore, IDisposable, IScopeReleaser
{
    internal readonly SyncBlock Block;

    /// <summary>Creates a semaphore with <paramref name="initialCount"/> free slots, bounded by <paramref name="maximumCount"/> when given.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A count is negative, or the initial count exceeds the maximum.</exception>
    public ProcessSemaphore(int initialCount, int? maximumCount = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initialCount);
        if (maximumCount is int max && (max <= 0 || initialCount > max))
            throw new ArgumentOutOfRangeException(nameof(maximumCount), maximumCount, $"The maximum count must be positive and at least the initial count ({initialCount}).");
        Block = SyncBlock.Create("sem");
        *Block.Word(0) = initialCount;
        *Block.Word(2) = maximumCount ?? int.MaxValue;
    }

    internal ProcessSemaphore(SyncBlock block) => Block = block;

    private int* CountWord => Block.Word(0);
    private int* Waiting => Block.Word(1);
    private int Maximum => *Block.Word(2);

    /// <summary>Waits for a free slot and takes it; dispose the result to give it back.</summary>
    public ProcessLockScope Acquire()
    {
        AcquireCore(Deadline.Infinite, CancellationToken.None);
        return new ProcessLockScope(this, 0);
    }

    /// <summary>Takes a slot if one is free, without waiting.</summary>
    public bool TryAcquire() => TryTake();

    /// <summary>Waits at most <paramref name="timeout"/> for a slot; true when taken.</summary>
    public bool TryAcquire(TimeSpan timeout) => AcquireCore(Deadline.After(timeout), CancellationToken.None);

    /// <summary>Waits for a slot without blocking a thread-pool thread; dispose the result to give it back.</summary>
    public ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default)
    {
        if (!cancellationToken.IsCancellationRequested && TryTake()) return new(new ProcessLockScope(this, 0));
        return SyncApi.Offload(() => { AcquireCore(Deadline.Infinite, cancellationToken); return new ProcessLockScope(this, 0); }, cancellationToken);
    }

    /// <summary>Waits at most <paramref name="timeout"/> for a slot without blocking a thread-pool thread.</summary>
    public ValueTask<bool> TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = Deadline.After(timeout);
        if (!cancellationToken.IsCancellationRequested && TryTake()) return new(true);
        return SyncApi.Offload(() => AcquireCore(deadline, cancellationToken), cancellationToken);
    }

    /// <summary>Gives back <paramref name="releaseCount"/> slots and returns the count before; wakes as many waiters.</summary>
    /// <exception cref="SemaphoreFullException">A bounded semaphore would exceed its maximum.</exception>
    public int Release(int releaseCount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(releaseCount);
        var max = Maximum;
        var current = Volatile.Read(ref *CountWord);
        while (true)
        {
            if (max - current < releaseCount)
                throw new SemaphoreFullException($"Releasing {releaseCount} would take the semaphore past its maximum of {max} (count is {current}): it was released more often than acquired.");
            var seen = Interlocked.CompareExchange(ref *CountWord, current + releaseCount, current);
            if (seen == current) break;
            current = seen;
        }
        if (Volatile.Read(ref *Waiting) > 0) Futex.Wake(CountWord, releaseCount);
        return current;
    }

    /// <summary>The number of free slots now (it may change at once).</summary>
    public int CurrentCount => Volatile.Read(ref *CountWord);

    /// <summary>The maximum, or null for an unbounded semaphore.</summary>
    public int? MaximumCount => Maximum == int.MaxValue ? null : Maximum;

    /// <summary>The shared-memory name of the semaphore (for diagnostics).</summary>
    public string Name => Block.Name;

    /// <summary>Releases this handle; the creator's handle also unlinks the semaphore's name.</summary>
    public void Dispose() => Block.Dispose();

    void IScopeReleaser.ReleaseScope(int thread) => Release();

    private bool TryTake()
    {
        var current = Volatile.Read(ref *CountWord);
        while (current > 0)
        {
            var seen = Interlocked.CompareExchange(ref *CountWord, current - 1, current);
            if (seen == current) return true;
            current = seen;
        }
        return false;
    }

    private bool AcquireCore(Deadline deadline, CancellationToken token)
    {
        token.ThrowIfCancellationRequested();
        if (TryTake()) return true;
        var spinner = new SpinWait();
        while (spinner.Count < Futex.SpinIterations)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            if (TryTake()) return true;
        }
        using var hold = Block.Keep();
        using var cancel = Futex.WakeOnCancel(CountWord, token);
        // Announce ourselves before the last look, so a releaser either sees us or we see its slot.
        Interlocked.Increment(ref *Waiting);
        try
        {
            while (true)
            {
                token.ThrowIfCancellationRequested();
                if (TryTake()) return true;
                if (!Futex.WaitSlice(CountWord, 0, deadline, out _)) return false;
            }
        }
        finally
        {
            Interlocked.Decrement(ref *Waiting);
        }
    }
}
