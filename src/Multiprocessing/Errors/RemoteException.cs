namespace Multiprocessing;

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
