using System.Buffers.Binary;
using System.Net.Sockets;

namespace Multiprocessing;

/// <summary>
/// Length-prefixed frames over a connected stream socket: [int32 little-endian length][payload].
/// One reader thread and any number of writers (serialized by a lock). Frames are batched by the
/// caller into one <see cref="FrameBuffer"/> so a burst of small messages costs one system call.
/// </summary>
internal sealed class MessageChannel : IDisposable
{
    /// <summary>Frames larger than this are refused as corrupt rather than allocated.</summary>
    public const int MaxFrameLength = 1 << 30;

    private readonly Socket _socket;
    private readonly Lock _writeLock = new();
    private byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private volatile bool _disposed;

    public MessageChannel(Socket socket)
    {
        _socket = socket;
    }

    /// <summary>Sends frames that were written into <paramref name="frames"/>.</summary>
    public void Send(ReadOnlySpan<byte> frames)
    {
        lock (_writeLock)
        {
            while (!frames.IsEmpty)
            {
                var n = _socket.Send(frames, SocketFlags.None);
                frames = frames[n..];
            }
        }
    }

    /// <summary>True when a whole frame is already buffered, so <see cref="TryReceive"/> will not block.</summary>
    public bool HasBufferedFrame
    {
        get
        {
            var available = _end - _start;
            return available >= 4 && available >= 4 + BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
        }
    }

    /// <summary>
    /// Blocks until a whole frame has arrived and returns its payload, valid until the next call.
    /// Returns false at end of stream (the other process closed or died).
    /// </summary>
    public bool TryReceive(out ReadOnlyMemory<byte> frame)
    {
        while (true)
        {
            var available = _end - _start;
            if (available >= 4)
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
                if (length < 0 || length > MaxFrameLength)
                    throw new InvalidDataException($"Corrupt frame length {length} on a worker channel.");
                if (available >= 4 + length)
                {
                    frame = new ReadOnlyMemory<byte>(_buffer, _start + 4, length);
                    _start += 4 + length;
                    return true;
                }
                EnsureRoom(4 + length);
            }
            else EnsureRoom(4);

            int read;
            try { read = _socket.Receive(_buffer.AsSpan(_end), SocketFlags.None); }
            catch (SocketException) when (_disposed) { read = 0; }
            catch (ObjectDisposedException) { read = 0; }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted) { read = 0; }
            if (read == 0)
            {
                frame = default;
                return false;
            }
            _end += read;
        }
    }

    /// <summary>Makes room for a frame of <paramref name="needed"/> bytes starting at the read position.</summary>
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

    /// <summary>Stops both directions; a blocked reader returns end of stream.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Dispose();
    }
}
