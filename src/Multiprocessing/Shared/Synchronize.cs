using Multiprocessing.Interop;

namespace Multiprocessing;

/// <summary>
/// A lock was taken over from a process that died while holding it. The lock is now held by the
/// caller (as with .NET's <see cref="AbandonedMutexException"/>): the state it protected may be half
/// updated, so check or repair it, then release the lock as usual.
/// </summary>
public sealed class AbandonedLockException : MultiprocessingException
{
    /// <summary>Creates the exception.</summary>
    public AbandonedLockException(string message) : base(message) { }

    /// <summary>Creates the exception naming the dead holder.</summary>
    public AbandonedLockException(string message, int deadProcessId) : base(message) => DeadProcessId = deadProcessId;

    /// <summary>The process id of the holder that died, when known.</summary>
    public int DeadProcessId { get; }

    internal static AbandonedLockException For(string what, int pid) => new(
        $"The {what} was held by process {pid}, which died without releasing it. It is now held by this caller: " +
        "check the state it protects, then release it as usual.", pid);
}

/// <summary>A <see cref="ProcessBarrier"/> was broken (aborted, reset, or a party timed out or was cancelled) while or before this party waited.</summary>
public sealed class BrokenBarrierException : MultiprocessingException
{
    /// <summary>Creates the exception.</summary>
    public BrokenBarrierException(string message) : base(message) { }
}

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

/// <summary>
/// The 64-byte shared-memory block behind a primitive: a few 32-bit futex words. The creator owns it
/// (unlinks on dispose, tracked if it dies); handles travel by its name.
/// </summary>
internal sealed unsafe class SyncBlock : IDisposable
{
    private const int Size = 64;
    private readonly SharedMemory _memory;

    private SyncBlock(SharedMemory memory) => _memory = memory;

    public static SyncBlock Create(string kind) => new(SharedMemory.Wrap(SharedMemory.CreateOwned(Size, null, "mp_" + kind + "_"), isOwner: true));

    public static SyncBlock Attach(string name)
    {
        var memory = SharedMemory.Attach(name);
        if (memory.Size < Size)
        {
            memory.Dispose();
            throw new SerializationException($"'{name}' is not the block of a synchronization primitive (it has {memory.Size} bytes).");
        }
        return new SyncBlock(memory);
    }

    public string Name => _memory.Name;

    public int* Word(int index) => (int*)_memory.Address + index;

    /// <summary>Keeps the mapping while a thread sleeps on it, so a concurrent Dispose cannot unmap it under the sleeper.</summary>
    public Hold Keep()
    {
        _ = _memory.Address; // throws once disposed
        if (!_memory.Mapping.TryAddReference()) throw new ObjectDisposedException(_memory.Name);
        return new Hold(_memory.Mapping);
    }

    public void Dispose() => _memory.Dispose();

    public readonly struct Hold(Mapping mapping) : IDisposable
    {
        public void Dispose() => Mappings.Release(mapping);
    }
}

/// <summary>Shared helpers of the primitives' public surface.</summary>
internal static class SyncApi
{
    public static ValueTask<T> Offload<T>(Func<T> blockingWait, CancellationToken token)
    {
        if (token.IsCancellationRequested) return ValueTask.FromCanceled<T>(token);
        return new ValueTask<T>(Futex.OnDedicatedThread(blockingWait));
    }

    public static SynchronizationLockException NotHeld(string what) =>
        new($"The {what} is not held by this process; release only what you acquired (Python raises the same error on release of an unlocked lock).");
}

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
public sealed unsafe class ProcessLock : IDisposable, IScopeReleaser
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

/// <summary>
/// A re-entrant lock across processes, like Python's <c>multiprocessing.RLock</c>: the thread that holds
/// it may take it again and must release it as many times. Owned by a (process, thread) pair: only the
/// owner releases. <see cref="AcquireAsync"/> records the calling thread as the owner and its scope
/// releases for that owner, so <c>using (await rlock.AcquireAsync())</c> works across awaits.
/// </summary>
public sealed unsafe class ProcessRLock : IDisposable, IScopeReleaser
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

/// <summary>
/// A counting semaphore across processes, like Python's <c>multiprocessing.Semaphore</c>, or
/// <c>BoundedSemaphore</c> when a maximum is given: releasing past the maximum throws
/// <see cref="SemaphoreFullException"/>. Captured by a worker lambda or passed as an argument, it arrives as the same semaphore.
/// </summary>
public sealed unsafe class ProcessSemaphore : IDisposable, IScopeReleaser
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

/// <summary>
/// An event across processes, like Python's <c>multiprocessing.Event</c>: <see cref="Set"/> releases every
/// waiter and keeps the event set until <see cref="Clear"/>. Captured by a worker lambda or passed as an argument, it arrives as the same event.
/// </summary>
public sealed unsafe class ProcessEvent : IDisposable
{
    internal readonly SyncBlock Block;

    /// <summary>Creates an event, set or not.</summary>
    public ProcessEvent(bool initiallySet = false)
    {
        Block = SyncBlock.Create("event");
        *Block.Word(0) = initiallySet ? 1 : 0;
    }

    internal ProcessEvent(SyncBlock block) => Block = block;

    private int* Flag => Block.Word(0);
    private int* Waiting => Block.Word(1);

    /// <summary>True once set and until cleared.</summary>
    public bool IsSet => Volatile.Read(ref *Flag) != 0;

    /// <summary>Sets the event, waking every process waiting for it.</summary>
    public void Set()
    {
        if (Interlocked.Exchange(ref *Flag, 1) == 0 && Volatile.Read(ref *Waiting) > 0) Futex.WakeAll(Flag);
    }

    /// <summary>Clears the event: later waits block until it is set again.</summary>
    public void Clear() => Interlocked.Exchange(ref *Flag, 0);

    /// <summary>Waits until the event is set.</summary>
    public void Wait() => WaitCore(Deadline.Infinite, CancellationToken.None);

    /// <summary>Waits at most <paramref name="timeout"/>; true when the event is set, false when the time ran out.</summary>
    public bool Wait(TimeSpan timeout) => WaitCore(Deadline.After(timeout), CancellationToken.None);

    /// <summary>Completes when the event is set, without blocking a thread-pool thread.</summary>
    public Task WaitAsync(CancellationToken cancellationToken = default)
    {
        if (IsSet) return Task.CompletedTask;
        return SyncApi.Offload(() => WaitCore(Deadline.Infinite, cancellationToken), cancellationToken).AsTask();
    }

    /// <summary>Waits at most <paramref name="timeout"/> without blocking a thread-pool thread; true when set.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = Deadline.After(timeout);
        if (IsSet) return Task.FromResult(true);
        return SyncApi.Offload(() => WaitCore(deadline, cancellationToken), cancellationToken).AsTask();
    }

    /// <summary>The shared-memory name of the event (for diagnostics).</summary>
    public string Name => Block.Name;

    /// <summary>Releases this handle; the creator's handle also unlinks the event's name.</summary>
    public void Dispose() => Block.Dispose();

    private bool WaitCore(Deadline deadline, CancellationToken token)
    {
        token.ThrowIfCancellationRequested();
        if (IsSet) return true;
        using var hold = Block.Keep();
        using var cancel = Futex.WakeOnCancel(Flag, token);
        Interlocked.Increment(ref *Waiting);
        try
        {
            while (true)
            {
                token.ThrowIfCancellationRequested();
                if (IsSet) return true;
                if (!Futex.WaitSlice(Flag, 0, deadline, out _)) return IsSet;
            }
        }
        finally
        {
            Interlocked.Decrement(ref *Waiting);
        }
    }
}

/// <summary>
/// A condition variable across processes, like Python's <c>multiprocessing.Condition</c>, over a
/// <see cref="ProcessLock"/> (a new one unless given; Python's default is an RLock). Hold the lock
/// (<see cref="Acquire"/>) to <see cref="Wait()"/> or <see cref="Notify"/>. As everywhere, a waiter may
/// wake without a notification: wait in a loop on your predicate, or use <see cref="WaitFor"/>.
/// </summary>
public sealed unsafe class ProcessCondition : IDisposable
{
    internal readonly SyncBlock Block;
    private readonly bool _ownsLock;

    /// <summary>Creates a condition over <paramref name="lock"/>, or over a new lock when null.</summary>
    public ProcessCondition(ProcessLock? @lock = null)
    {
        _ownsLock = @lock is null;
        Lock = @lock ?? new ProcessLock();
        Block = SyncBlock.Create("cond");
    }

    internal ProcessCondition(SyncBlock block, ProcessLock @lock)
    {
        Block = block;
        Lock = @lock;
        _ownsLock = true;
    }

    private int* Sequence => Block.Word(0);
    // Waiters registered and not yet woken (high half) and wake permits not yet taken (low half), changed together
    // by compare-and-swap: Notify(n) turns at most n registered waiters into permits, so at most n waits return true.
    private long* Tickets => (long*)Block.Word(2);
    private const long OneWaiter = 1L << 32;

    /// <summary>The lock the condition is over.</summary>
    public ProcessLock Lock { get; }

    /// <summary>Takes the underlying lock; dispose the result to release it.</summary>
    public ProcessLockScope Acquire() => Lock.Acquire();

    /// <summary>Waits at most <paramref name="timeout"/> for the underlying lock.</summary>
    public bool TryAcquire(TimeSpan timeout) => Lock.TryAcquire(timeout);

    /// <summary>Takes the underlying lock without blocking a thread-pool thread.</summary>
    public ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default) => Lock.AcquireAsync(cancellationToken);

    /// <summary>Releases the underlying lock.</summary>
    public void Release() => Lock.Release();

    /// <summary>Releases the lock, waits for a notification, and takes the lock again.</summary>
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void Wait() => WaitCore(Deadline.Infinite, CancellationToken.None);

    /// <summary>As <see cref="Wait()"/>, for at most <paramref name="timeout"/>; false when the time ran out. The lock is held again either way.</summary>
    public bool Wait(TimeSpan timeout) => WaitCore(Deadline.After(timeout), CancellationToken.None);

    /// <summary>As <see cref="Wait(TimeSpan)"/> without blocking a thread-pool thread; on cancellation the lock is held again before the task is cancelled.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = Deadline.After(timeout);
        return SyncApi.Offload(() => WaitCore(deadline, cancellationToken), cancellationToken).AsTask();
    }

    /// <summary>As <see cref="Wait()"/> without blocking a thread-pool thread.</summary>
    public Task WaitAsync(CancellationToken cancellationToken = default) => WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Waits until <paramref name="predicate"/> holds (checked with the lock held), at most <paramref name="timeout"/>; returns its last value.</summary>
    public bool WaitFor(Func<bool> predicate, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var deadline = Deadline.After(timeout ?? Timeout.InfiniteTimeSpan);
        var result = predicate();
        while (!result)
        {
            if (deadline.HasPassed) break;
            WaitCore(deadline, CancellationToken.None);
            result = predicate();
        }
        return result;
    }

    /// <summary>Wakes at most <paramref name="count"/> of the processes waiting now, as Python's <c>notify(n)</c>.</summary>
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void Notify(int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (!Lock.IsHeldByThisProcess) throw SyncApi.NotHeld("condition's lock");
        int woken;
        while (true)
        {
            var tickets = Volatile.Read(ref *Tickets);
            woken = (int)Math.Min(count, tickets >> 32);
            if (woken == 0) return;
            if (Interlocked.CompareExchange(ref *Tickets, tickets - woken * OneWaiter + woken, tickets) == tickets) break;
        }
        // The permits are there before the sequence moves: a waiter that sees the new sequence sees them too.
        Interlocked.Increment(ref *Sequence);
        Futex.Wake(Sequence, woken);
    }

    /// <summary>Takes a wake permit if one is left; a waiter that got one was notified.</summary>
    private bool TryTakePermit()
    {
        while (true)
        {
            var tickets = Volatile.Read(ref *Tickets);
            if ((int)tickets == 0) return false;
            if (Interlocked.CompareExchange(ref *Tickets, tickets - 1, tickets) == tickets) return true;
        }
    }

    /// <summary>A waiter that gives up (time out, cancellation): takes a permit if one is left, else withdraws; true when notified.</summary>
    private bool TakePermitOrWithdraw(bool notifiedSince)
    {
        while (true)
        {
            var tickets = Volatile.Read(ref *Tickets);
            var take = notifiedSince && (int)tickets > 0;
            if (Interlocked.CompareExchange(ref *Tickets, take ? tickets - 1 : tickets - OneWaiter, tickets) == tickets) return take;
        }
    }

    /// <summary>Wakes every waiter.</summary>
    /// <exception cref="SynchronizationLockException">This process does not hold the lock.</exception>
    public void NotifyAll() => Notify(int.MaxValue);

    /// <summary>The shared-memory name of the condition (for diagnostics).</summary>
    public string Name => Block.Name;

    /// <summary>Releases this handle (and the lock's, when the condition made its own lock).</summary>
    public void Dispose()
    {
        Block.Dispose();
        if (_ownsLock) Lock.Dispose();
    }

    private bool WaitCore(Deadline deadline, CancellationToken token)
    {
        if (!Lock.IsHeldByThisProcess) throw SyncApi.NotHeld("condition's lock");
        token.ThrowIfCancellationRequested();
        using var hold = Block.Keep();
        Interlocked.Add(ref *Tickets, OneWaiter); // registered while the lock is held: a Notify after our release counts us
        // Notify also runs under the lock, so this is the sequence before any notify that counted us: a permit is
        // ours to take only once it moved (a later waiter must not take the permit of one notified before it came).
        var registeredAt = Volatile.Read(ref *Sequence);
        var notified = false;
        Lock.Release();
        try
        {
            using var cancel = Futex.WakeOnCancel(Sequence, token);
            while (!token.IsCancellationRequested)
            {
                var seen = Volatile.Read(ref *Sequence);
                if (seen != registeredAt && TryTakePermit()) { notified = true; break; }
                if (!Futex.WaitSlice(Sequence, seen, deadline, out _)) break;
            }
        }
        finally
        {
            // Gave up: a permit handed out since we came is ours (a notify is never lost), else we withdraw.
            if (!notified) notified = TakePermitOrWithdraw(Volatile.Read(ref *Sequence) != registeredAt);
            // Python's wait re-takes the lock whatever happened; so do we, and never time out doing so.
            Lock.AcquireCore(Deadline.Infinite, CancellationToken.None);
        }
        if (!notified) token.ThrowIfCancellationRequested();
        return notified;
    }
}

/// <summary>
/// A barrier across processes, like Python's <c>multiprocessing.Barrier</c>: <see cref="SignalAndWait()"/>
/// blocks until <see cref="Parties"/> parties have called it, then releases them all and starts over.
/// <see cref="Abort"/>, a party's timeout or cancellation break it: current and later waiters get
/// <see cref="BrokenBarrierException"/> until <see cref="Reset"/>. Python's algorithm (filling, draining,
/// resetting, broken) over a futex mutex and condition in one shared block.
/// </summary>
public sealed unsafe class ProcessBarrier : IDisposable
{
    private const int Filling = 0, Draining = 1, Resetting = -1, Broken = -2;
    internal readonly SyncBlock Block;

    /// <summary>Creates a barrier for <paramref name="parties"/> parties.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="parties"/> is less than 1.</exception>
    public ProcessBarrier(int parties)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parties, 1);
        Block = SyncBlock.Create("barrier");
        *Block.Word(5) = parties;
    }

    internal ProcessBarrier(SyncBlock block) => Block = block;

    private int* Mutex => Block.Word(0);
    private int* Sequence => Block.Word(1);
    private int* Sleepers => Block.Word(2);
    private int* State => Block.Word(3);
    private int* Count => Block.Word(4);

    /// <summary>The number of parties needed to pass.</summary>
    public int Parties => *Block.Word(5);

    /// <summary>The number of parties waiting now.</summary>
    public int ParticipantsWaiting => Volatile.Read(ref *State) == Filling ? Volatile.Read(ref *Count) : 0;

    /// <summary>True when the barrier is broken.</summary>
    public bool IsBroken => Volatile.Read(ref *State) == Broken;

    /// <summary>Waits for all parties; returns this party's arrival index (0 to Parties-1), as Python's <c>wait()</c>.</summary>
    /// <exception cref="BrokenBarrierException">The barrier is or became broken.</exception>
    public int SignalAndWait() => SignalAndWaitCore(Deadline.Infinite, CancellationToken.None) ?? throw Unreachable();

    /// <summary>Waits at most <paramref name="timeout"/>; false when the time ran out, which breaks the barrier for the others, as in Python.</summary>
    /// <exception cref="BrokenBarrierException">The barrier is or became broken by another party.</exception>
    public bool SignalAndWait(TimeSpan timeout) => SignalAndWaitCore(Deadline.After(timeout), CancellationToken.None) is not null;

    /// <summary>Waits for all parties without blocking a thread-pool thread; cancellation breaks the barrier.</summary>
    public ValueTask<int> SignalAndWaitAsync(CancellationToken cancellationToken = default) =>
        SyncApi.Offload(() => SignalAndWaitCore(Deadline.Infinite, cancellationToken) ?? throw Unreachable(), cancellationToken);

    /// <summary>Breaks the barrier: waiters and later callers get <see cref="BrokenBarrierException"/> until <see cref="Reset"/>.</summary>
    public void Abort()
    {
        Enter();
        try { Break(); }
        finally { Leave(); }
    }

    /// <summary>Returns the barrier to its empty state; parties waiting now get <see cref="BrokenBarrierException"/>.</summary>
    public void Reset()
    {
        Enter();
        try
        {
            if (*Count > 0)
            {
                if (*State is Filling or Broken) *State = Resetting;
            }
            else *State = Filling;
            NotifyAll();
        }
        finally { Leave(); }
    }

    /// <summary>The shared-memory name of the barrier (for diagnostics).</summary>
    public string Name => Block.Name;

    /// <summary>Releases this handle; the creator's handle also unlinks the barrier's name.</summary>
    public void Dispose() => Block.Dispose();

    private static InvalidOperationException Unreachable() => new("A barrier wait without a deadline ended without passing.");

    private int? SignalAndWaitCore(Deadline deadline, CancellationToken token)
    {
        token.ThrowIfCancellationRequested();
        using var hold = Block.Keep();
        Enter();
        try
        {
            // A previous cycle still draining or resetting: wait for it to finish.
            while (*State is Draining or Resetting)
            {
                if (!WaitLocked(deadline, token)) return TimedOut(token);
            }
            if (*State < 0) throw BrokenError();
            var index = (*Count)++;
            try
            {
                if (index + 1 == Parties)
                {
                    *State = Draining;
                    NotifyAll();
                    return index;
                }
                while (*State == Filling)
                {
                    if (!WaitLocked(deadline, token)) return TimedOut(token);
                }
                if (*State < 0) throw BrokenError();
                return index;
            }
            finally
            {
                (*Count)--;
                if (*Count == 0 && *State is Draining or Resetting)
                {
                    *State = Filling;
                    NotifyAll();
                }
            }
        }
        finally
        {
            Leave();
        }
    }

    private int? TimedOut(CancellationToken token)
    {
        Break();
        token.ThrowIfCancellationRequested();
        return null;
    }

    private BrokenBarrierException BrokenError() => new(
        $"The barrier '{Name}' is broken (aborted, reset while waiting, or a party timed out or was cancelled); call Reset() to use it again.");

    private void Break()
    {
        *State = Broken;
        NotifyAll();
    }

    private void Enter()
    {
        // The mutex guards a few words for a moment; a holder that died there leaves them suspect: break the barrier.
        if (LockWord.Acquire(Mutex, Deadline.Infinite, CancellationToken.None, out _) == LockWord.Outcome.Abandoned) Break();
    }

    private void Leave() => LockWord.Release(Mutex);

    private void NotifyAll()
    {
        Interlocked.Increment(ref *Sequence);
        if (Volatile.Read(ref *Sleepers) > 0) Futex.WakeAll(Sequence);
    }

    /// <summary>With the mutex held: releases it, sleeps until notified (or the deadline, or cancellation), takes it again. False on deadline or cancellation.</summary>
    private bool WaitLocked(Deadline deadline, CancellationToken token)
    {
        var seen = Volatile.Read(ref *Sequence);
        Interlocked.Increment(ref *Sleepers);
        Leave();
        var notified = false;
        try
        {
            using var cancel = Futex.WakeOnCancel(Sequence, token);
            while (!token.IsCancellationRequested)
            {
                if (Volatile.Read(ref *Sequence) != seen) { notified = true; break; }
                if (!Futex.WaitSlice(Sequence, seen, deadline, out _)) break;
            }
        }
        finally
        {
            Interlocked.Decrement(ref *Sleepers);
            Enter();
        }
        return notified;
    }
}
