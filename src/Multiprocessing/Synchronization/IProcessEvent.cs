namespace Multiprocessing;

/// <summary>
/// An event that processes share, wherever it lives: in shared memory (<see cref="ProcessEvent"/>) or in a
/// manager's process (<see cref="EventProxy"/>). Code that takes an <see cref="IProcessEvent"/> works with either.
/// </summary>
public interface IProcessEvent
{
    /// <summary>True while the event is set.</summary>
    bool IsSet { get; }

    /// <summary>Sets the event and wakes every waiter.</summary>
    void Set();

    /// <summary>Clears the event; later waiters wait again.</summary>
    void Clear();

    /// <summary>Waits until the event is set.</summary>
    void Wait();

    /// <summary>Waits at most <paramref name="timeout"/>; true when the event is set, false when the time ran out.</summary>
    bool Wait(TimeSpan timeout);

    /// <summary>Completes when the event is set, without blocking the caller's thread.</summary>
    ValueTask WaitAsync(CancellationToken cancellationToken = default);

    /// <summary>Waits at most <paramref name="timeout"/> without blocking the caller's thread; true when set.</summary>
    ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default);
}
