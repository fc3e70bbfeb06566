namespace Multiprocessing;

/// <summary>
/// A barrier that processes share, wherever it lives: in shared memory (<see cref="ProcessBarrier"/>) or in a manager's
/// process (<see cref="BarrierProxy"/>). Code that takes an <see cref="IProcessBarrier"/> works with either.
/// </summary>
public interface IProcessBarrier
{
    /// <summary>The number of parties needed to pass.</summary>
    int Parties { get; }

    /// <summary>The number of parties waiting now.</summary>
    int ParticipantsWaiting { get; }

    /// <summary>True when the barrier is broken.</summary>
    bool IsBroken { get; }

    /// <summary>Waits for all parties; returns this party's arrival index (0 to Parties-1), as Python's <c>wait()</c>.</summary>
    /// <exception cref="BrokenBarrierException">The barrier is or became broken.</exception>
    int SignalAndWait();

    /// <summary>Waits at most <paramref name="timeout"/>; false when the time ran out, which breaks the barrier for the others, as in Python.</summary>
    /// <exception cref="BrokenBarrierException">The barrier is or became broken by another party.</exception>
    bool SignalAndWait(TimeSpan timeout);

    /// <summary>Waits for all parties without blocking the caller's thread; cancellation breaks the barrier.</summary>
    /// <exception cref="BrokenBarrierException">The barrier is or became broken.</exception>
    ValueTask<int> SignalAndWaitAsync(CancellationToken cancellationToken = default);

    /// <summary>Breaks the barrier: waiters and later callers get <see cref="BrokenBarrierException"/> until <see cref="Reset"/>.</summary>
    void Abort();

    /// <summary>Returns the barrier to its empty state; parties waiting now get <see cref="BrokenBarrierException"/>.</summary>
    void Reset();
}
