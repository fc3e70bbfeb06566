namespace Multiprocessing;

/// <summary>
/// A condition variable that processes share, wherever it lives: in shared memory (<see cref="ProcessCondition"/>) or in a
/// manager's process (<see cref="ConditionProxy"/>). Code that takes an <see cref="IProcessCondition"/> works with either.
/// Hold the lock (<see cref="Acquire"/>) to wait or notify; a waiter may wake without a notification, so wait in a loop
/// on your predicate, or use <see cref="WaitFor"/>.
/// </summary>
public interface IProcessCondition
{
    /// <summary>Takes the condition's lock; dispose the result to release it.</summary>
    ProcessLockScope Acquire();

    /// <summary>Waits at most <paramref name="timeout"/> for the condition's lock; true when held.</summary>
    bool TryAcquire(TimeSpan timeout);

    /// <summary>Takes the condition's lock without blocking the caller's thread; dispose the result to release it.</summary>
    ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default);

    /// <summary>Releases the condition's lock.</summary>
    void Release();

    /// <summary>Releases the lock, waits for a notification, and takes the lock again.</summary>
    void Wait();

    /// <summary>As <see cref="Wait()"/>, for at most <paramref name="timeout"/>; false when the time ran out. The lock is held again either way.</summary>
    bool Wait(TimeSpan timeout);

    /// <summary>As <see cref="Wait()"/> without blocking the caller's thread.</summary>
    ValueTask WaitAsync(CancellationToken cancellationToken = default);

    /// <summary>As <see cref="Wait(TimeSpan)"/> without blocking the caller's thread; on cancellation the lock is held again before the task is cancelled.</summary>
    ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Waits until <paramref name="predicate"/> holds (checked with the lock held), at most <paramref name="timeout"/>; returns its last value.</summary>
    bool WaitFor(Func<bool> predicate, TimeSpan? timeout = null);

    /// <summary>Wakes at most <paramref name="count"/> of the waiters, as Python's <c>notify(n)</c>.</summary>
    void Notify(int count = 1);

    /// <summary>Wakes every waiter.</summary>
    void NotifyAll();
}
