namespace Multiprocessing;

/// <summary>Base type of the exceptions this library defines.</summary>
public class MultiprocessingException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public MultiprocessingException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    public MultiprocessingException(string message, Exception? innerException) : base(message, innerException) { }
}
