namespace Multiprocessing;

/// <summary>
/// One end of a connection, like Python's <c>multiprocessing.connection.Connection</c>: <see cref="Send"/> on one
/// end, <see cref="Receive"/> on the other, in order. The ends of a <see cref="Pipe"/> are rings in shared memory
/// (one per direction, one writer and one reader each), and an end captured by a worker lambda or passed as an
/// argument arrives attached to the same pipe. A connection made by a <see cref="Listener{T}"/> or
/// <see cref="Connection.Connect{T}(string, byte[], ConnectOptions)"/> is an authenticated socket between processes
/// that need not be related; it belongs to the process that made it.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Close"/> (or <see cref="Dispose"/>) closes this end for the peer: the peer's <see cref="Receive"/>
/// throws <see cref="EndOfStreamException"/> once it has read everything sent before, and its <see cref="Send"/>
/// throws <see cref="IOException"/>. The peer also sees the end of the stream when every process that sent on this
/// end has exited. Unlike Python, do not close the parent's copy of a pipe end given to a child: there is one end,
/// not one per process, and closing it closes it for every process.
/// </para>
/// <para>
/// A socket connection cannot travel to another process (captured by a worker lambda, passed as an argument, put
/// in a queue): that is refused with a <see cref="SerializationException"/>. Give the other process the listener's
/// <see cref="Listener{T}.Address"/> and key, and let it connect itself.
/// </para>
/// <para><see cref="Connection.Wait"/> waits on several connections (and queues, processes, listeners) at once.</para>
/// </remarks>
/// <typeparam name="T">The message type.</typeparam>
public sealed class Connection<T> : IDisposable, IWaitable
{
    private readonly ConnectionTransport<T> _transport;
    private int _closed;

    internal Connection(SharedRing? send, SharedRing? receive, PipeOwnership owner) : this(new RingTransport<T>(send, receive, owner)) { }

    internal Connection(ConnectionTransport<T> transport) => _transport = transport;

    internal SharedRing? SendRing => (_transport as RingTransport<T>)?.SendRing;
    internal SharedRing? ReceiveRing => (_transport as RingTransport<T>)?.ReceiveRing;

    /// <summary>True for a connection over a socket (from a <see cref="Listener{T}"/> or <see cref="Connection.Connect{T}(string, byte[], ConnectOptions)"/>), false for a pipe's end.</summary>
    internal bool IsSocket => _transport is SocketTransport<T>;

    /// <summary>True when this end can receive.</summary>
    public bool Readable => _transport.CanReceive;

    /// <summary>True when this end can send.</summary>
    public bool Writable => _transport.CanSend;

    /// <summary>True once this end was closed (in this process).</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Sends a message to the other end.</summary>
    /// <exception cref="IOException">The other end is closed.</exception>
    /// <exception cref="InvalidOperationException">This end only receives.</exception>
    /// <exception cref="SerializationException">The message cannot be serialized.</exception>
    public void Send(T message) => SendSide().Send(message);

    /// <summary>
    /// Sends a message. A pipe never waits for the reader (a full ring spills), so this completes at once; a socket
    /// connection waits for room in the socket's buffer without blocking a thread. <paramref name="cancellationToken"/>
    /// is observed before the message starts going out, never in the middle of it.
    /// </summary>
    public ValueTask SendAsync(T message, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled(cancellationToken);
        try
        {
            return SendSide().SendAsync(message, cancellationToken);
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }
    }

    /// <summary>Receives the next message, waiting until one comes.</summary>
    /// <exception cref="EndOfStreamException">The other end was closed (or its processes exited) and every message was received.</exception>
    /// <exception cref="InvalidOperationException">This end only sends.</exception>
    public T Receive()
    {
        ReceiveSide().TryReceive(out T message, Deadline.Infinite);
        return message;
    }

    /// <summary>Receives the next message, waiting at most <paramref name="timeout"/>; false when none came.</summary>
    /// <exception cref="EndOfStreamException">The other end was closed and every message was received.</exception>
    public bool TryReceive(out T message, TimeSpan timeout) => ReceiveSide().TryReceive(out message, Deadline.After(timeout));

    /// <summary>Receives the next message without blocking a thread-pool thread.</summary>
    /// <exception cref="EndOfStreamException">The other end was closed and every message was received.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public ValueTask<T> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        var transport = ReceiveSide();
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<T>(cancellationToken);
        return transport.ReceiveAsync(cancellationToken);
    }

    /// <summary>True when a message is waiting (or the other end is closed, so <see cref="Receive"/> would not wait); does not wait.</summary>
    public bool Poll() => Poll(TimeSpan.Zero);

    /// <summary>
    /// Waits at most <paramref name="timeout"/> until a message is waiting or the other end is closed; true then
    /// (as Python's <c>poll(timeout)</c>), false when the time ran out.
    /// </summary>
    public bool Poll(TimeSpan timeout) => ReceiveSide().Poll(Deadline.After(timeout));

    /// <summary>Closes this end: the peer reads what was sent, then gets <see cref="EndOfStreamException"/>. A pipe's end is closed for every process.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _transport.Close();
    }

    /// <summary>Closes this end (see <see cref="Close"/>) and releases this process's handle on the pipe or its socket.</summary>
    public void Dispose()
    {
        Close();
        _transport.Release();
    }

    /// <inheritdoc />
    public override string ToString() => $"Connection<{typeof(T).Name}>({(Readable ? "r" : "")}{(Writable ? "w" : "")}{(IsClosed ? ", closed" : "")}{_transport.Describe})";

    bool IWaitable.IsReady => Poll();

    Task IWaitable.WhenReadyAsync(CancellationToken cancellationToken) => ReceiveSide().WhenReadableAsync(cancellationToken);

    private ConnectionTransport<T> SendSide()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        return _transport.CanSend ? _transport : throw new InvalidOperationException("This end of the pipe only receives: it is the first end of Pipe.Create(duplex: false). Send on the second end.");
    }

    private ConnectionTransport<T> ReceiveSide()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        return _transport.CanReceive ? _transport : throw new InvalidOperationException("This end of the pipe only sends: it is the second end of Pipe.Create(duplex: false). Receive on the first end.");
    }
}
