namespace Multiprocessing;

/// <summary>
/// One end of a <see cref="Pipe"/>, like Python's <c>multiprocessing.connection.Connection</c>: <see cref="Send"/> on one
/// end, <see cref="Receive"/> on the other, in order. Each direction is a ring in shared memory with one writer and one
/// reader. An end captured by a worker lambda or passed as an argument arrives attached to the same pipe.
/// </summary>
/// <remarks>
/// <see cref="Close"/> (or <see cref="Dispose"/>) closes this end for every process: the peer's <see cref="Receive"/>
/// throws <see cref="EndOfStreamException"/> once it has read everything sent before, and its <see cref="Send"/>
/// throws <see cref="IOException"/>. The peer also sees the end of the stream when every process that sent on this
/// end has exited. Unlike Python, do not close the parent's copy of the child's end: there is one end, not one per process.
/// </remarks>
/// <typeparam name="T">The message type.</typeparam>
public sealed class Connection<T> : IDisposable
{
    private readonly SharedRing? _send;
    private readonly SharedRing? _receive;
    private readonly PipeOwnership _owner;
    private int _closed;

    internal Connection(SharedRing? send, SharedRing? receive, PipeOwnership owner)
    {
        _send = send;
        _receive = receive;
        _owner = owner;
    }

    internal SharedRing? SendRing => _send;
    internal SharedRing? ReceiveRing => _receive;

    /// <summary>True when this end can receive.</summary>
    public bool Readable => _receive is not null;

    /// <summary>True when this end can send.</summary>
    public bool Writable => _send is not null;

    /// <summary>True once this end was closed (in this process).</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Sends a message to the other end.</summary>
    /// <exception cref="IOException">The other end is closed.</exception>
    /// <exception cref="InvalidOperationException">This end only receives.</exception>
    public void Send(T message)
    {
        var ring = SendSide();
        try
        {
            ring.Put(message, countUnfinished: false, Deadline.Infinite, CancellationToken.None, "The message");
        }
        catch (InvalidOperationException) when (ring.IsClosed)
        {
            throw new ObjectDisposedException(nameof(Connection<T>), "This end of the pipe was closed.");
        }
    }

    /// <summary>Sends a message; it never waits for the reader (a full ring spills), so this completes at once.</summary>
    public ValueTask SendAsync(T message, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled(cancellationToken);
        try
        {
            Send(message);
            return ValueTask.CompletedTask;
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
        ReceiveSide().Take(out T message, Deadline.Infinite, CancellationToken.None, endOfStream: true);
        return message;
    }

    /// <summary>Receives the next message, waiting at most <paramref name="timeout"/>; false when none came.</summary>
    /// <exception cref="EndOfStreamException">The other end was closed and every message was received.</exception>
    public bool TryReceive(out T message, TimeSpan timeout) => ReceiveSide().Take(out message, Deadline.After(timeout), CancellationToken.None, endOfStream: true);

    /// <summary>Receives the next message without blocking a thread-pool thread.</summary>
    /// <exception cref="EndOfStreamException">The other end was closed and every message was received.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public ValueTask<T> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        var ring = ReceiveSide();
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<T>(cancellationToken);
        if (ring.HasData && ring.Take(out T message, Deadline.After(TimeSpan.Zero), cancellationToken, endOfStream: true)) return new(message);
        return new ValueTask<T>(Futex.OnDedicatedThread(() =>
        {
            ring.Take(out T received, Deadline.Infinite, cancellationToken, endOfStream: true);
            return received;
        }));
    }

    /// <summary>True when a message is waiting (or the other end is closed, so <see cref="Receive"/> would not wait); does not wait.</summary>
    public bool Poll() => Poll(TimeSpan.Zero);

    /// <summary>
    /// Waits at most <paramref name="timeout"/> until a message is waiting or the other end is closed; true then
    /// (as Python's <c>poll(timeout)</c>), false when the time ran out.
    /// </summary>
    public bool Poll(TimeSpan timeout) => ReceiveSide().WaitForData(Deadline.After(timeout), CancellationToken.None, endOfStream: true);

    /// <summary>Closes this end for every process: the peer reads what was sent, then gets <see cref="EndOfStreamException"/>.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _send?.Close();
        _receive?.CloseReader();
    }

    /// <summary>Closes this end (see <see cref="Close"/>) and releases this process's handle on the pipe.</summary>
    public void Dispose()
    {
        Close();
        _owner.Release();
    }

    /// <inheritdoc />
    public override string ToString() => $"Connection<{typeof(T).Name}>({(Readable ? "r" : "")}{(Writable ? "w" : "")}{(IsClosed ? ", closed" : "")})";

    private SharedRing SendSide()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        return _send ?? throw new InvalidOperationException("This end of the pipe only receives: it is the first end of Pipe.Create(duplex: false). Send on the second end.");
    }

    private SharedRing ReceiveSide()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        return _receive ?? throw new InvalidOperationException("This end of the pipe only sends: it is the second end of Pipe.Create(duplex: false). Receive on the first end.");
    }
}
