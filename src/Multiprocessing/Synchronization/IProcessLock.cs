namespace Multiprocessing;

/// <summary>
/// A lock that processes share, wherever it lives: in shared memory (<see cref="ProcessLock"/>,
/// <see cref="ProcessRLock"/>) or in a manager's process (<see cref="LockProxy"/>, reachable from other
/// machines). Code that takes an <see cref="IProcessLock"/> works with either, as Python code takes a
/// <c>Lock</c> or a manager's <c>Lock()</c> alike.
/// <code>using (gate.Acquire()) { /* exclusive */ }</code>
/// </summary>
public interface IProcessLock
{
    /// <summary>Waits until the lock is free and takes it; dispose the result to release it.</summary>
    /// <exception cref="AbandonedLockException">The previous holder's process went away holding it; the lock is now held by the caller.</exception>
    ProcessLockScope Acquire();

    /// <summary>Takes the lock if it is free, without waiting; true when taken (then call <see cref="Release"/>).</summary>
    bool TryAcquire();

    /// <summary>Waits at most <paramref name="timeout"/> for the lock; true when taken (then call <see cref="Release"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is negative (other than <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    bool TryAcquire(TimeSpan timeout);

    /// <summary>Waits for the lock without blocking the caller's thread; dispose the result to release it.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    ValueTask<ProcessLockScope> AcquireAsync(CancellationToken cancellationToken = default);

    /// <summary>Waits at most <paramref name="timeout"/> for the lock without blocking the caller's thread; true when taken.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    ValueTask<bool> TryAcquireAsync(TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>Releases the lock.</summary>
    /// <exception cref="System.Threading.SynchronizationLockException">The lock is not held.</exception>
    void Release();
}
