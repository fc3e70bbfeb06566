namespace Multiprocessing;

/// <summary>How a process ended: an exit code, or the signal that killed it.</summary>
internal readonly record struct ExitStatus(int? Code, int? Signal)
{
    /// <summary>Python's convention: the exit code, or minus the signal number.</summary>
    public int PythonCode => Signal is int s ? -s : Code ?? 0;

    public static ExitStatus FromDotNet(int exitCode) =>
        // .NET reports a child killed by signal N as 128 + N.
        exitCode is > 128 and < 160 ? new ExitStatus(null, exitCode - 128) : new ExitStatus(exitCode, null);
}
