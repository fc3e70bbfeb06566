namespace Multiprocessing;

/// <summary>
/// A barrier across processes, like Python's <c>multiprocessing.Barrier</c>: <see cref="SignalAndWait()"/>
/// blocks until <see cref="Parties"/> parties have called it, then releases them all and starts over.
/// <see cref="Abort"/>, a party's timeout or cancellation break it: current and later waiters get
/// <see cref="BrokenBarrierException"/> until <see cref="Reset"/>. Python's algorithm (filling, draining,
/// resetting, broken) over a futex mutex and condition in one shared block.
/// </summary>
public sealed unsafe class ProcessBarrier : IProcessBarrier, IDisposable
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
