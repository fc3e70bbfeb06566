namespace Multiprocessing;

/// <summary>A value could not be serialized to travel to or from another process.</summary>
public sealed class SerializationException : MultiprocessingException
{
    /// <summary>Creates the exception.</summary>
    public SerializationException(string message, Exception? innerException = null) : base(message, innerException) { }
}
