using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;

namespace Multiprocessing;

/// <summary>
/// The one framing of the library: length-prefixed frames over a connected stream socket,
/// [int32 little-endian length][payload], between a pool and its workers and between a manager and its
/// clients. One reader at a time and any number of writers (serialized by a lock). Callers batch frames
/// into one <see cref="FrameBuffer"/> so a burst of small messages costs one system call. A length the
/// peer announces outside 1..<see cref="MaxFrameLength"/> is refused as corrupt, never allocated.
/// </summary>
internal sealed class FrameChannel : IDisposable
{
    /// <summary>The default bound on a frame: 1 GiB (a worker's batch of results can be large).</summary>
    public const int DefaultMaxFrameLength = 1 << 30;

    private readonly Socket _socket;
    private readonly Lock _writeLock = new();
    private readonly int _initialSize;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _ended;
    private volatile bool _disposed;

    /// <param name="socket">A connected stream socket; the channel owns it.</param>
    /// <param name="maxFrameLength">The longest frame the peer may announce.</param>
    /// <param name="bufferSize">The receive buffer's starting size (it grows for a larger frame; see <see cref="Shrink"/>).</param>
    public FrameChannel(Socket socket, int maxFrameLength = DefaultMaxFrameLength, int bufferSize = 64 * 1024)
    {
        _socket = socket;
        MaxFrameLength = maxFrameLength;
        _initialSize = bufferSize;
        _buffer = new byte[bufferSize];
        // Request and reply: Nagle's delay would hold each small frame back.
        if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6) socket.NoDelay = true;
    }

    public Socket Socket => _socket;

    /// <summary>The longest frame the peer may announce.</summary>
    public int MaxFrameLength { get; }

    /// <summary>
    /// How long a read polls for data before it sleeps in the kernel (0: never). A manager request and its
    /// reply take a few microseconds of work; waking a sleeping thread costs tens. Polling briefly (with
    /// yields, so an oversubscribed machine loses little) turns most round trips into the fast case.
    /// </summary>
    public long SpinTicks { get; set; }

    /// <summary>Who is at the other end, for messages.</summary>
    public string Peer
    {
        get
        {
            try { return _socket.RemoteEndPoint?.ToString() is { Length: > 0 } s ? s : "local peer"; }
            catch (Exception) { return "unknown peer"; }
        }
    }

    /// <summary>Sends bytes (whole frames written into a <see cref="FrameBuffer"/>, or a handshake's raw bytes).</summary>
    public void Send(ReadOnlySpan<byte> bytes)
    {
        lock (_writeLock)
        {
            while (!bytes.IsEmpty) bytes = bytes[_socket.Send(bytes, SocketFlags.None)..];
        }
    }

    /// <summary>True when a whole frame is already buffered, so <see cref="TryReceive(out ReadOnlyMemory{byte})"/> will not block.</summary>
    public bool HasBufferedFrame
    {
        get
        {
            var available = _end - _start;
            return available >= 4 && available >= 4 + BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
        }
    }

    /// <summary>
    /// Blocks until a whole frame has arrived and returns its payload, valid until the next read. False at end of
    /// stream (the other process closed or died); <see cref="InvalidDataException"/> for a length outside 1..<see cref="MaxFrameLength"/>.
    /// </summary>
    public bool TryReceive(out ReadOnlyMemory<byte> frame) => TryReceive(MaxFrameLength, out frame);

    /// <summary>As <see cref="TryReceive(out ReadOnlyMemory{byte})"/>, with a bound of <paramref name="maxLength"/> for this frame.</summary>
    public bool TryReceive(int maxLength, out ReadOnlyMemory<byte> frame)
    {
        frame = default;
        if (!Fill(4)) return false;
        var length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
        if (length <= 0 || length > maxLength)
            throw new InvalidDataException($"frame length {length} is outside 1..{maxLength}");
        if (!Fill(4 + length)) return false;
        frame = new ReadOnlyMemory<byte>(_buffer, _start + 4, length);
        _start += 4 + length;
        return true;
    }

    /// <summary>True once a read met the end of the stream (what is buffered can still be read).</summary>
    public bool HasEnded => _ended;

    /// <summary>
    /// Reads what arrives, for at most until <paramref name="deadline"/>, until a whole frame is buffered or the stream
    /// ended: true then, so <see cref="TryReceive(out ReadOnlyMemory{byte})"/> will not block; false when the time ran
    /// out first (a part of a frame stays buffered for the next read). A passed deadline still takes what has arrived.
    /// </summary>
    public bool WaitForFrame(Deadline deadline)
    {
        while (true)
        {
            if (FrameReadyOrEnded(out var needed)) return true;
            EnsureRoom(needed);
            var ms = deadline.RemainingMilliseconds(1000);
            bool readable;
            try { readable = _socket.Poll(ms * 1000, SelectMode.SelectRead); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                _ended = true;
                return true;
            }
            if (!readable)
            {
                if (deadline.HasPassed) return false;
                continue;
            }
            // Readable: data, or the end of the stream; this read does not block.
            if (!ReadSome()) return true;
        }
    }

    /// <summary>As <see cref="WaitForFrame"/>, without a thread: completes when a whole frame is buffered or the stream ended.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; what arrived stays buffered.</exception>
    public async ValueTask WaitForFrameAsync(CancellationToken cancellationToken)
    {
        while (!FrameReadyOrEnded(out var needed))
        {
            EnsureRoom(needed);
            int read;
            try
            {
                read = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException) when (_disposed) { read = 0; }
            catch (ObjectDisposedException) { read = 0; }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted or SocketError.OperationAborted) { read = 0; }
            if (read == 0)
            {
                _ended = true;
                return;
            }
            _end += read;
        }
    }

    /// <summary>True when a whole frame is buffered, the buffered length is not a frame's (the read reports it), or the stream ended; else the bytes needed.</summary>
    private bool FrameReadyOrEnded(out int needed)
    {
        needed = 4;
        if (_ended) return true;
        var available = _end - _start;
        if (available < 4) return false;
        var length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
        if (length <= 0 || length > MaxFrameLength) return true;
        needed = 4 + length;
        return available >= needed;
    }

    /// <summary>One receive into the buffer (blocking until something arrives, unless a poll said it will not); false at end of stream.</summary>
    private bool ReadSome()
    {
        int read;
        try { read = _socket.Receive(_buffer.AsSpan(_end), SocketFlags.None); }
        catch (SocketException) when (_disposed) { read = 0; }
        catch (ObjectDisposedException) { read = 0; }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted) { read = 0; }
        if (read == 0)
        {
            _ended = true;
            return false;
        }
        _end += read;
        return true;
    }

    /// <summary>Reads exactly <paramref name="count"/> raw bytes (a handshake). False at end of stream.</summary>
    public bool TryReadExactly(int count, out ReadOnlyMemory<byte> bytes)
    {
        if (!Fill(count)) { bytes = default; return false; }
        bytes = new ReadOnlyMemory<byte>(_buffer, _start, count);
        _start += count;
        return true;
    }

    private bool Fill(int needed)
    {
        while (_end - _start < needed)
        {
            if (_ended) return false;
            EnsureRoom(needed);
            if (SpinTicks > 0 && _end == _start) Spin();
            if (!ReadSome()) return false;
        }
        return true;
    }

    /// <summary>Makes room for <paramref name="needed"/> bytes from the read position, and space to read into.</summary>
    private void EnsureRoom(int needed)
    {
        var available = _end - _start;
        if (_start > 0 && (_buffer.Length - _start < needed || _buffer.Length - _end < 4096))
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, available);
            _start = 0;
            _end = available;
        }
        if (_buffer.Length < needed || _buffer.Length - _end == 0)
        {
            var bigger = new byte[Math.Max(needed, _buffer.Length * 2)];
            Buffer.BlockCopy(_buffer, _start, bigger, 0, available);
            _buffer = bigger;
            _start = 0;
            _end = available;
        }
    }

    // Adaptive, like an adaptive mutex: spin while spinning has been catching the peer's answer; after
    // misses (the peer is slow, or the machine oversubscribed) sleep at once, retrying a spin now and then.
    private int _spinCredit;

    private void Spin()
    {
        if (_spinCredit < 0)
        {
            _spinCredit++;
            return;
        }
        var deadline = Stopwatch.GetTimestamp() + SpinTicks;
        var spins = 0;
        try
        {
            while (_socket.Available == 0)
            {
                if (Stopwatch.GetTimestamp() >= deadline)
                {
                    _spinCredit = _spinCredit > 4 ? _spinCredit / 2 : -8;
                    return;
                }
                // Yield now and then: on a busy machine the peer we wait for may need this core.
                if (++spins % 16 == 0) Thread.Yield();
                else Thread.SpinWait(10);
            }
            if (_spinCredit < 16) _spinCredit++;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The blocking read that follows reports it.
        }
    }

    /// <summary>After a large frame, returns to a small buffer so an idle connection holds little memory.</summary>
    public void Shrink()
    {
        if (_buffer.Length > Math.Max(1 << 20, _initialSize) && _end == _start)
        {
            _buffer = new byte[_initialSize];
            _start = _end = 0;
        }
    }

    /// <summary>Stops both directions; a blocked reader returns end of stream.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Dispose();
    }
}
