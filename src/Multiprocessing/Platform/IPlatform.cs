namespace Multiprocessing;

/// <summary>
/// Everything this library asks of the operating system beyond what .NET offers. Linux is the first
/// implementation; macOS and Windows follow by implementing this interface, nothing above it.
/// </summary>
internal interface IPlatform
{
    /// <summary>Makes the calling process receive SIGKILL when its parent dies. Returns false when unsupported.</summary>
    bool SetParentDeathSignal();

    /// <summary>The parent process id of the calling process.</summary>
    int GetParentProcessId();

    /// <summary>Sends a signal to a process; false when it no longer exists.</summary>
    bool SendSignal(int pid, int signal);

    /// <summary>Ends the calling process at once, running no finalizers or handlers.</summary>
    void ExitNow(int code);

    /// <summary>True while a process with this id exists (also when it belongs to another user).</summary>
    bool ProcessExists(int pid);

    /// <summary>
    /// Sleeps while the 32-bit word at <paramref name="address"/> (in memory shared between processes)
    /// holds <paramref name="expected"/>, at most <paramref name="timeoutMilliseconds"/> (-1: no limit).
    /// </summary>
    FutexWaitResult FutexWait(nint address, int expected, int timeoutMilliseconds);

    /// <summary>Wakes up to <paramref name="count"/> processes sleeping on the word at <paramref name="address"/>; returns how many woke.</summary>
    int FutexWake(nint address, int count);

    /// <summary>Creates the shared-memory object <paramref name="name"/> (mode 0600, failing if it exists), sizes and maps it.</summary>
    SharedMapping CreateSharedMemory(string name, long size);

    /// <summary>Maps the existing shared-memory object <paramref name="name"/> whole.</summary>
    SharedMapping OpenSharedMemory(string name);

    /// <summary>Identity and size of the shared-memory object now bound to <paramref name="name"/>, or null when there is none.</summary>
    (long Inode, long Size)? StatSharedMemory(string name);

    /// <summary>Unmaps what <see cref="CreateSharedMemory"/> or <see cref="OpenSharedMemory"/> mapped.</summary>
    void Unmap(nint address, long size);

    /// <summary>Removes the name of a shared-memory object; false when there was none. Mappings stay valid.</summary>
    bool UnlinkSharedMemory(string name);

    /// <summary>
    /// Time all processors of the machine have spent idle since boot, summed over processors; null when the
    /// platform cannot tell. Two readings apart show how many cores nobody used in between.
    /// </summary>
    TimeSpan? SystemIdleTime();

    /// <summary>Bytes of process <paramref name="pid"/> resident in memory now, or null when unknown (it exited, or the platform cannot tell).</summary>
    long? ResidentMemory(int pid);

    /// <summary>
    /// What tells this incarnation of process <paramref name="pid"/> from a later one with the same id (on Linux,
    /// its start time in clock ticks after boot), or null when unknown. Read it while the process is alive.
    /// </summary>
    long? ProcessStartKey(int pid);

    /// <summary>
    /// Removes what the .NET runtime of the dead process (<paramref name="pid"/>, <paramref name="startKey"/>) left
    /// behind when it did not exit cleanly (on Unix, its diagnostic and debugger sockets in the temporary
    /// folder). Best effort; a later process that reuses the id has another key, and its files are kept.
    /// </summary>
    void RemoveRuntimeLeftovers(int pid, long startKey);

    /// <summary>
    /// How to start a resource tracker (see ResourceTracker): a small process that reads tab-separated lines on
    /// its standard input, <c>+ KIND ID INODE</c> and <c>- KIND ID</c> (KIND <c>shm</c>, <c>shm+</c> for a block
    /// and its <c>ID_*</c> spill blocks, <c>dir</c> for a folder; INODE <c>-</c> when unchecked), and at end of input
    /// removes every ID still registered whose inode still matches. It must not die of the terminal's signals.
    /// </summary>
    System.Diagnostics.ProcessStartInfo ResourceTrackerStartInfo();
}

/// <summary>How a futex wait ended.</summary>
internal enum FutexWaitResult
{
    /// <summary>Woken (or spuriously returned): look at the word again.</summary>
    Woken,
    /// <summary>The word did not hold the expected value when the wait began.</summary>
    ValueChanged,
    /// <summary>The time ran out.</summary>
    TimedOut,
}

/// <summary>A shared-memory object mapped into this process: its address, size and file identity.</summary>
internal readonly record struct SharedMapping(nint Address, long Size, long Inode);

/// <summary>The platform this process runs on.</summary>
internal static class Platform
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    public static IPlatform Current { get; } = OperatingSystem.IsLinux()
        ? new LinuxPlatform()
        : throw new PlatformNotSupportedException(
            "Multiprocessing runs on Linux for now; macOS and Windows need an implementation of its platform layer (Platform/IPlatform.cs).");
}
