namespace Multiprocessing.Interop;

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
}

/// <summary>The platform this process runs on.</summary>
internal static class Platform
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    public static IPlatform Current { get; } = OperatingSystem.IsLinux()
        ? new LinuxPlatform()
        : throw new PlatformNotSupportedException(
            "Multiprocessing runs on Linux for now; macOS and Windows need an implementation of its platform layer (Interop/IPlatform.cs).");
}
