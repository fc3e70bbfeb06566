namespace Multiprocessing;

/// <summary>A <see cref="ProcessBarrier"/> was broken (aborted, reset, or a party timed out or was cancelled) while or before this party waited.</summary>
public sealed class BrokenBarrierException : MultiprocessingException
{
    /// <summary>Creates the exception.</summary>
    public BrokenBarrierException(string message) : base(message) { }
}
