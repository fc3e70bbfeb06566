namespace Multiprocessing;

/// <summary>
/// A request or reply frame was malformed: the connection it came on is closed, nothing else.
/// </summary>
internal sealed class ManagerProtocolException(string message) : Exception(message);
