namespace Multiprocessing;

/// <summary>
/// A consumer waited on an empty queue whose producers have all died (killed or crashed; a producer that exits
/// normally or disposes its handle is not counted) without closing it. Reported once per death: waiting again
/// waits for new producers.
/// </summary>
public sealed class ProducerDiedException : MultiprocessingException
{
    /// <summary>Creates the exception.</summary>
    public ProducerDiedException(string message, int processId) : base(message) => ProcessId = processId;

    /// <summary>The process id of a producer that died.</summary>
    public int ProcessId { get; }
}
