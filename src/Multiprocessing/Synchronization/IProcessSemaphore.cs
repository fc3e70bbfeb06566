namespace Multiprocessing;

/// <summary>
/// A semaphore that processes share, wherever it lives: in shared memory (<see cref="ProcessSemaphore"/>) or in a
/// manager's process (<see cref="SemaphoreProxy"/>). Code that takes an <see cref="IProcessSemaphore"/> works with either.
/// </summary>
public interface IProcessSemaphore
{
    /// <summary>The count now (others may change it at once).</summary>
    int CurrentCount { get; }

    /// <summary>The most the count may reach (a bounded semaphore), or null for no limit.</summary>
    int? MaximumCount { get; }

    /// <summary>Waits until the count is above zero and takes one; dispose the result to release it.</summary>
    ProcessLockScope Acquire();

    /// <summary>Takes one if the count is above zero, without waiting.</summary>
    bool TryAcquire();

    /// <summary>Waits at most <paramref name="timeout"/> to take one; true when taken.</summary>
    bool TryAcquire(TimeSpan timeout);

    /// <summary>Waits to take one without blocking the caller's thread; dispose the result to release it.</summary>
    ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default);

    /// <summary>Waits at most <paramref name="timeout"/> to take one without blocking the caller's thread; true when taken.</summary>
    ValueTask<bool> TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Gives back <paramref name="releaseCount"/>; returns the count before.</summary>
    /// <exception cref="SemaphoreFullException">A bounded semaphore would pass its maximum.</exception>
    int Release(int releaseCount = 1);
}
