namespace Multiprocessing;

/// <summary>
/// An event across processes, like Python's <c>multiprocessing.Event</c>: <see cref="Set"/> releases every
/// waiter and keeps the event set until <see cref="Clear"/>. Captured by a worker lambda or passed as an argument, it arrives as the same event.
/// </summary>
public sealed unsafe class ProcessEvent : IProcessEvent, IDisposable
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
    public ValueTask WaitAsync(CancellationToken cancellationToken = default)
    {
        if (IsSet) return ValueTask.CompletedTask;
        return new(SyncApi.Offload(() => WaitCore(Deadline.Infinite, cancellationToken), cancellationToken).AsTask());
    }

    /// <summary>Waits at most <paramref name="timeout"/> without blocking a thread-pool thread; true when set.</summary>
    public ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = Deadline.After(timeout);
        if (IsSet) return new(true);
        return SyncApi.Offload(() => WaitCore(deadline, cancellationToken), cancellationToken);
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
