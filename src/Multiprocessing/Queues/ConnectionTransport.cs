namespace Multiprocessing;

/// <summary>
/// How a <see cref="Connection{T}"/> moves its messages: two shared-memory rings (<see cref="RingTransport{T}"/>, a
/// <see cref="Pipe"/>'s ends) or a socket (<see cref="SocketTransport{T}"/>, a <see cref="Listener{T}"/>'s and
/// <see cref="Connection.Connect{T}(string, byte[], ConnectOptions)"/>'s). The connection checks that it is open and
/// that it sends (or receives) before it calls here; a transport only moves bytes.
/// </summary>
internal abstract class ConnectionTransport<T>
{
    /// <summary>Whether this end receives.</summary>
    public abstract bool CanReceive { get; }

    /// <summary>Whether this end sends.</summary>
    public abstract bool CanSend { get; }

    /// <summary>Sends a message (see <see cref="Connection{T}.Send"/>).</summary>
    public abstract void Send(T message);

    /// <summary>Sends a message without blocking a thread where the transport can.</summary>
    public abstract ValueTask SendAsync(T message, CancellationToken cancellationToken);

    /// <summary>Receives the next message, waiting until <paramref name="deadline"/>; false when none came in time.</summary>
    /// <exception cref="EndOfStreamException">The other end closed and everything it sent was received.</exception>
    public abstract bool TryReceive(out T message, Deadline deadline);

    /// <summary>Receives the next message without blocking a thread-pool thread.</summary>
    public abstract ValueTask<T> ReceiveAsync(CancellationToken cancellationToken);

    /// <summary>Waits until <paramref name="deadline"/> for a message or the end of the stream; true when either is there.</summary>
    public abstract bool Poll(Deadline deadline);

    /// <summary>Completes when a message or the end of the stream is there (for <see cref="Connection.Wait"/>).</summary>
    public abstract Task WhenReadableAsync(CancellationToken cancellationToken);

    /// <summary>Closes this end for the peer.</summary>
    public abstract void Close();

    /// <summary>Releases what this process holds (after <see cref="Close"/>).</summary>
    public abstract void Release();

    /// <summary>Words for <see cref="Connection{T}.ToString"/> after the r/w flags ("" for a pipe).</summary>
    public virtual string Describe => "";
}
