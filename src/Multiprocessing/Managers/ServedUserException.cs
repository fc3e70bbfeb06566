namespace Multiprocessing;

/// <summary>An exception thrown by user code in the server: always sent home, never mistaken for a malformed request.</summary>
internal sealed class ServedUserException(Exception inner) : Exception(inner.Message, inner);
