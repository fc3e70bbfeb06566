namespace Multiprocessing;

/// <summary>
/// A condition variable across processes, like Python's <c>multiprocessing.Condition</c>, over a
/// <see cref="ProcessLock"/> (a new one unless given; Python's default is an RLock). Hold the lock
/// (<see cref="Acquire"/>) to <see cref="Wait()"/> or <see cref="Notify"/>. As everywhere, a waiter may
/// wake without a notification: wait in a loop on your predicate, or use <see cref="WaitFor"/>.
/// </summary>
public sealed unsafe class ProcessCondition : IProcessCondition, IDisposable
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
    public ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = Deadline.After(timeout);
        return SyncApi.Offload(() => WaitCore(deadline, cancellationToken), cancellationToken);
    }

    /// <summary>As <see cref="Wait()"/> without blocking a thread-pool thread.</summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default) => new(WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken).AsTask());

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
