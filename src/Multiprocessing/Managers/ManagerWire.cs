using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Multiprocessing;

/// <summary>What a request asks of a served object. Object id 0 is the manager itself.</summary>
internal enum ManagerOp : byte
{
    // The manager (object id 0).
    Create = 1,
    Shutdown = 2,

    DictGet = 10, DictSet, DictAdd, DictRemove, DictContainsKey, DictCount, DictClear, DictItems, DictAddOrUpdate, DictContainsPair, DictRemovePair,
    ListCount = 30, ListGet, ListSet, ListInsert, ListRemoveAt, ListAdd, ListIndexOf, ListRemove, ListClear, ListItems,
    ValueGet = 50, ValueSet, ValueUpdate,
    LockAcquire = 60, LockRelease,
    QueuePut = 70, QueueGet, QueueCount,
    ServiceCall = 80,
    CacheGet = 90, CachePut,
}

/// <summary>The kinds of object a manager serves.</summary>
internal enum ServedKind : byte { Dictionary = 1, List = 2, Value = 3, Lock = 4, Queue = 5, Service = 6, Cache = 7 }

/// <summary>
/// A request or reply frame was malformed: the connection it came on is closed, nothing else.
/// </summary>
internal sealed class ManagerProtocolException(string message) : Exception(message);

/// <summary>
/// One side of a manager connection: [int32 little-endian length][payload] frames, with a bound on
/// the length a peer may announce so a hostile or corrupt length never becomes an allocation.
/// Not thread-safe: a connection serves one request at a time.
/// </summary>
internal sealed class WireConnection : IDisposable
{
    private readonly Socket _socket;
    private byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;
    private bool _disposed;

    public WireConnection(Socket socket)
    {
        _socket = socket;
        if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6) socket.NoDelay = true;
    }

    /// <summary>Frames of the next request or reply are written here, then <see cref="Flush"/>ed.</summary>
    public FrameBuffer Output { get; } = new();

    public Socket Socket => _socket;

    /// <summary>
    /// How long a read polls for data before it sleeps in the kernel. A manager request and its reply
    /// take a few microseconds of work; waking a sleeping thread costs tens. Polling briefly (with
    /// yields, so an oversubscribed machine loses little) turns most round trips into the fast case.
    /// </summary>
    public long SpinTicks { get; set; }

    /// <summary>The default <see cref="SpinTicks"/>: a few round trips' worth.</summary>
    public static readonly long DefaultSpinTicks = System.Diagnostics.Stopwatch.Frequency *
        (int.TryParse(Environment.GetEnvironmentVariable("MULTIPROCESSING_MANAGER_SPIN_US"), out var us) ? us : 50) / 1_000_000;

    /// <summary>State of the client's current call (see <see cref="ManagerCall"/>).</summary>
    public bool CallSent { get; set; }

    /// <summary>Whether the current call's reply was read, so the connection is in step.</summary>
    public bool CallAnswered { get; set; }

    public string Peer
    {
        get
        {
            try { return _socket.RemoteEndPoint?.ToString() is { Length: > 0 } s ? s : "local peer"; }
            catch (Exception) { return "unknown peer"; }
        }
    }

    public void Send(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty) data = data[_socket.Send(data, SocketFlags.None)..];
    }

    /// <summary>Sends what <see cref="Output"/> holds and clears it.</summary>
    public void Flush()
    {
        Send(Output.WrittenSpan);
        Output.Clear();
    }

    /// <summary>Reads exactly <paramref name="count"/> raw bytes (the handshake). False at end of stream.</summary>
    public bool TryReadExactly(int count, out ReadOnlyMemory<byte> bytes)
    {
        if (!Fill(count)) { bytes = default; return false; }
        bytes = new ReadOnlyMemory<byte>(_buffer, _start, count);
        _start += count;
        return true;
    }

    /// <summary>
    /// Blocks until a whole frame has arrived; its payload stays valid until the next read.
    /// False at end of stream; <see cref="ManagerProtocolException"/> for a length outside 1..<paramref name="maxLength"/>.
    /// </summary>
    public bool TryReceiveFrame(int maxLength, out ReadOnlyMemory<byte> frame)
    {
        frame = default;
        if (!Fill(4)) return false;
        var length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
        if (length <= 0 || length > maxLength)
            throw new ManagerProtocolException($"frame length {length} is outside 1..{maxLength}");
        if (!Fill(4 + length)) return false;
        frame = new ReadOnlyMemory<byte>(_buffer, _start + 4, length);
        _start += 4 + length;
        return true;
    }

    private bool Fill(int needed)
    {
        while (_end - _start < needed)
        {
            MakeRoom(needed);
            if (SpinTicks > 0 && _end == _start) Spin();
            int read;
            try { read = _socket.Receive(_buffer.AsSpan(_end), SocketFlags.None); }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted) { read = 0; }
            catch (ObjectDisposedException) { read = 0; }
            if (read == 0) return false;
            _end += read;
        }
        return true;
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
        var deadline = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
        var spins = 0;
        try
        {
            while (_socket.Available == 0)
            {
                if (System.Diagnostics.Stopwatch.GetTimestamp() >= deadline)
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

    private void MakeRoom(int needed)
    {
        var available = _end - _start;
        if (_buffer.Length - _start >= needed && _end < _buffer.Length) return;
        // Slide what is unread to the front, growing the buffer only to what the frame needs.
        var target = _buffer.Length >= needed ? _buffer : new byte[Math.Max(needed, _buffer.Length * 2)];
        Buffer.BlockCopy(_buffer, _start, target, 0, available);
        _buffer = target;
        _start = 0;
        _end = available;
    }

    /// <summary>After a large frame, returns to a small buffer so an idle connection holds little memory.</summary>
    public void Shrink()
    {
        if (_buffer.Length > 1 << 20 && _end == _start)
        {
            _buffer = new byte[16 * 1024];
            _start = _end = 0;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { _socket.Shutdown(SocketShutdown.Both); } catch (Exception) { }
        _socket.Dispose();
    }
}

/// <summary>Endpoints as text, so a handle can name where its manager listens: "unix:/path" or "tcp:host:port".</summary>
internal static class ManagerEndpoints
{
    public static string Format(EndPoint endpoint) => endpoint switch
    {
        UnixDomainSocketEndPoint u => "unix:" + u,
        IPEndPoint ip => "tcp:" + ip,
        _ => throw new ArgumentException($"A manager listens on an IPEndPoint (TCP) or a UnixDomainSocketEndPoint, not a {endpoint.GetType().Name}.", nameof(endpoint)),
    };

    public static EndPoint Parse(string text)
    {
        if (text.StartsWith("unix:", StringComparison.Ordinal)) return new UnixDomainSocketEndPoint(text[5..]);
        if (text.StartsWith("tcp:", StringComparison.Ordinal) && IPEndPoint.TryParse(text[4..], out var ip)) return ip;
        throw new ManagerProtocolException($"'{text}' is not a manager endpoint");
    }

    public static Socket NewSocket(EndPoint endpoint) => endpoint is UnixDomainSocketEndPoint
        ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
}
