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
