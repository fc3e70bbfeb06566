namespace Multiprocessing;

/// <summary>
/// A worker process died while it held work: it crashed (stack overflow, access violation,
/// <c>Environment.FailFast</c>), was killed, or exited without answering.
/// </summary>
public sealed class WorkerCrashedException : MultiprocessingException
{
    /// <summary>Creates the exception.</summary>
    public WorkerCrashedException(string message, int processId, int? exitCode, int? signal, IReadOnlyList<string> stderrTail)
        : base(Compose(message, exitCode, signal, stderrTail))
    {
        ProcessId = processId;
        ExitCode = exitCode;
        Signal = signal;
        StandardErrorTail = stderrTail;
    }

    /// <summary>The process id of the worker that died.</summary>
    public int ProcessId { get; }

    /// <summary>The worker's exit code, when it exited rather than being ended by a signal.</summary>
    public int? ExitCode { get; }

    /// <summary>The number of the signal that ended the worker (9 for SIGKILL, 6 for SIGABRT, 11 for SIGSEGV), if any.</summary>
    public int? Signal { get; }

    /// <summary>The last lines the worker wrote to its standard error before it died.</summary>
    public IReadOnlyList<string> StandardErrorTail { get; }

    private static string Compose(string message, int? exitCode, int? signal, IReadOnlyList<string> tail)
    {
        var how = signal is int s ? $"killed by signal {s} ({SignalName(s)})" : exitCode is int c ? $"exit code {c}" : "exit status unknown";
        var text = $"{message} ({how}).";
        if (tail.Count > 0)
            text += " Last lines of its stderr:" + Environment.NewLine + string.Join(Environment.NewLine, tail.Select(l => "  | " + l));
        return text;
    }

    internal static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP", 2 => "SIGINT", 3 => "SIGQUIT", 4 => "SIGILL", 6 => "SIGABRT", 7 => "SIGBUS", 8 => "SIGFPE",
        9 => "SIGKILL", 11 => "SIGSEGV", 13 => "SIGPIPE", 15 => "SIGTERM", _ => "signal " + signal,
    };
}
