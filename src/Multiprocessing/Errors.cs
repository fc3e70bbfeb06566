namespace Multiprocessing;

/// <summary>Base type of the exceptions this library defines.</summary>
public class MultiprocessingException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public MultiprocessingException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    public MultiprocessingException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// An exception thrown by code in another process whose type could not be rebuilt here (it has no
/// <c>(string)</c> or <c>(string, Exception)</c> constructor, or its type does not load).
/// </summary>
public sealed class RemoteException : MultiprocessingException
{
    /// <summary>Creates the exception from what the other process reported.</summary>
    public RemoteException(string remoteType, string message, string? remoteStackTrace, Exception? innerException = null)
        : base($"{remoteType}: {message}", innerException)
    {
        RemoteType = remoteType;
        RemoteMessage = message;
        RemoteStackTrace = remoteStackTrace;
    }

    /// <summary>The full name of the exception type thrown in the other process.</summary>
    public string RemoteType { get; }

    /// <summary>The message of the exception thrown in the other process.</summary>
    public string RemoteMessage { get; }

    /// <summary>The stack trace in the other process, where the exception was thrown.</summary>
    public string? RemoteStackTrace { get; }
}

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

/// <summary>A value could not be serialized to travel to or from another process.</summary>
public sealed class SerializationException : MultiprocessingException
{
    /// <summary>Creates the exception.</summary>
    public SerializationException(string message, Exception? innerException = null) : base(message, innerException) { }
}
