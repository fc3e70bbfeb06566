using System.Net.Sockets;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// The transport of a connection made by a <see cref="Listener{T}"/> or <see cref="Connection.Connect{T}(string, byte[], ConnectOptions)"/>:
/// the library's framing (<see cref="FrameChannel"/>) over an authenticated socket, one message a frame. Messages are
/// written by the default serializer and read with its untrusted-data settings, as a manager's values are (the bytes
/// came over a socket). One reader at a time and one writer at a time: each direction has a gate, so a
/// <see cref="Connection.Wait"/> and a receive on another thread take turns rather than tear a frame.
/// </summary>
internal sealed class SocketTransport<T> : ConnectionTransport<T>
{
    private readonly FrameChannel _channel;
    private readonly string _peer;
    private readonly SemaphoreSlim _readGate = new(1, 1);
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly FrameBuffer _output = new();
    private volatile bool _closed;

    /// <param name="channel">The channel over the authenticated socket; the transport owns it.</param>
    /// <param name="peer">The other end, for messages ("the listener at unix:/tmp/s", "the client at 127.0.0.1:40022").</param>
    public SocketTransport(FrameChannel channel, string peer)
    {
        _channel = channel;
        _peer = peer;
    }

    public override bool CanReceive => true;

    public override bool CanSend => true;

    public override string Describe => ", " + _peer;

    public override void Send(T message)
    {
        _writeGate.Wait();
        try
        {
            var frame = Frame(message);
            try
            {
                _channel.Send(frame.Span);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                throw Unsendable(e);
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public override async ValueTask SendAsync(T message, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var frame = Frame(message);
            // Not cancelled once started: half a frame would leave the stream unreadable for the peer.
            try
            {
                while (!frame.IsEmpty)
                {
                    var sent = await _channel.Socket.SendAsync(frame, SocketFlags.None, CancellationToken.None).ConfigureAwait(false);
                    frame = frame[sent..];
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                throw Unsendable(e);
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public override bool TryReceive(out T message, Deadline deadline)
    {
        message = default!;
        if (!_readGate.Wait(deadline.IsInfinite ? Timeout.Infinite : deadline.RemainingMilliseconds(int.MaxValue))) return false;
        try
        {
            // Without a deadline the read blocks in the kernel; with one, only what has arrived is read.
            if (!deadline.IsInfinite && !_channel.WaitForFrame(deadline)) return false;
            message = ReadFrame();
            return true;
        }
        finally
        {
            _readGate.Release();
        }
    }

    public override async ValueTask<T> ReceiveAsync(CancellationToken cancellationToken)
    {
        await _readGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _channel.WaitForFrameAsync(cancellationToken).ConfigureAwait(false);
            return ReadFrame(); // a whole frame is buffered, or the stream ended: this does not block
        }
        finally
        {
            _readGate.Release();
        }
    }

    public override bool Poll(Deadline deadline)
    {
        if (!_readGate.Wait(deadline.IsInfinite ? Timeout.Infinite : deadline.RemainingMilliseconds(int.MaxValue))) return false;
        try
        {
            return _channel.WaitForFrame(deadline);
        }
        finally
        {
            _readGate.Release();
        }
    }

    public override async Task WhenReadableAsync(CancellationToken cancellationToken)
    {
        await _readGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _channel.WaitForFrameAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _readGate.Release();
        }
    }

    public override void Close()
    {
        _closed = true;
        _channel.Dispose(); // the peer reads what was sent, then the end of the stream; a read blocked here returns
    }

    public override void Release() => _channel.Dispose();

    /// <summary>Writes <paramref name="message"/> as one frame into the output buffer (under the write gate).</summary>
    private ReadOnlyMemory<byte> Frame(T message)
    {
        _output.Clear();
        _output.BeginFrame();
        try
        {
            MessagePackSerializer.Serialize(_output, message, MessagePackObjectSerializer.Options);
        }
        catch (Exception e)
        {
            _output.AbandonFrame();
            throw TravelErrors.CannotSend("The message", message?.GetType() ?? typeof(T), e);
        }
        _output.EndFrame();
        var length = _output.Length - 4;
        if (length > _channel.MaxFrameLength)
        {
            _output.Clear();
            throw new ArgumentException(
                $"The message is {length:N0} bytes long, over the limit of {_channel.MaxFrameLength:N0} for this connection (MaxMessageBytes in ListenerOptions and ConnectOptions). " +
                "Send it in parts, or raise the limit on both ends.", nameof(message));
        }
        return _output.WrittenMemory;
    }

    private T ReadFrame()
    {
        ReadOnlyMemory<byte> frame;
        try
        {
            if (!_channel.TryReceive(out frame))
            {
                if (_closed) throw new ObjectDisposedException(nameof(Connection<T>), "This end of the connection was closed.");
                throw new EndOfStreamException($"The other end of the connection ({_peer}) was closed, or its process exited, and everything it sent has been received.");
            }
        }
        catch (InvalidDataException e)
        {
            throw new IOException($"The connection with {_peer} is corrupt ({e.Message}): its other end is not a Connection<{TravelErrors.Friendly(typeof(T))}>, or sent a message over this end's MaxMessageBytes.", e);
        }
        try
        {
            return MessagePackSerializer.Deserialize<T>(frame, ManagerSerialization.UntrustedOptions);
        }
        catch (Exception e)
        {
            throw TravelErrors.CannotRead("A message from the other end", typeof(T), e);
        }
        finally
        {
            _channel.Shrink();
        }
    }

    private Exception Unsendable(Exception e) => _closed
        ? new ObjectDisposedException(nameof(Connection<T>), "This end of the connection was closed.")
        : new IOException($"The other end of the connection ({_peer}) is closed, or its process exited: nothing more can be sent.", e);
}
