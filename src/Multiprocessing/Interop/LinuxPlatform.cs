using System.Runtime.InteropServices;

namespace Multiprocessing.Interop;

/// <summary>Linux system calls through libc.</summary>
internal sealed partial class LinuxPlatform : IPlatform
{
    private const int PR_SET_PDEATHSIG = 1;

    public bool SetParentDeathSignal() => prctl(PR_SET_PDEATHSIG, (nuint)Platform.SigKill, 0, 0, 0) == 0;

    public int GetParentProcessId() => getppid();

    public bool SendSignal(int pid, int signal) => kill(pid, signal) == 0;

    public void ExitNow(int code) => _exit(code);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc")]
    private static partial int getppid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc")]
    private static partial void _exit(int status);
}
