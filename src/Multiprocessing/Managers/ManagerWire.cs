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
/// One side of a manager connection: the library's framing (<see cref="FrameChannel"/>) with the bound the
/// manager sets on requests, plus the state of the client's current call. Not thread-safe: a connection
/// serves one request at a time.
/// </summary>
internal sealed class WireConnection(Socket socket) : IDisposable
{
    private readonly FrameChannel _channel = new(socket, bufferSize: 16 * 1024);

    /// <summary>Frames of the next request or reply are written here, then <see cref="Flush"/>ed.</summary>
    public FrameBuffer Output { get; } = new();

    public Socket Socket => _channel.Socket;

    /// <summary>How long a read polls before it sleeps (see <see cref="FrameChannel.SpinTicks"/>).</summary>
    public long SpinTicks
    {
        get => _channel.SpinTicks;
        set => _channel.SpinTicks = value;
    }

    /// <summary>The default <see cref="SpinTicks"/>: a few round trips' worth (MULTIPROCESSING_MANAGER_SPIN_US overrides 50 µs).</summary>
    public static readonly long DefaultSpinTicks = System.Diagnostics.Stopwatch.Frequency *
        (int.TryParse(Environment.GetEnvironmentVariable("MULTIPROCESSING_MANAGER_SPIN_US"), out var us) ? us : 50) / 1_000_000;

    /// <summary>State of the client's current call (see <see cref="ManagerCall"/>).</summary>
    public bool CallSent { get; set; }

    /// <summary>Whether the current call's reply was read, so the connection is in step.</summary>
    public bool CallAnswered { get; set; }

    public string Peer => _channel.Peer;

    public void Send(ReadOnlySpan<byte> data) => _channel.Send(data);

    /// <summary>Sends what <see cref="Output"/> holds and clears it.</summary>
    public void Flush()
    {
        _channel.Send(Output.WrittenSpan);
        Output.Clear();
    }

    /// <summary>Reads exactly <paramref name="count"/> raw bytes (the handshake). False at end of stream.</summary>
    public bool TryReadExactly(int count, out ReadOnlyMemory<byte> bytes) => _channel.TryReadExactly(count, out bytes);

    /// <summary>
    /// Blocks until a whole frame has arrived; its payload stays valid until the next read.
    /// False at end of stream; <see cref="ManagerProtocolException"/> for a length outside 1..<paramref name="maxLength"/>.
    /// </summary>
    public bool TryReceiveFrame(int maxLength, out ReadOnlyMemory<byte> frame)
    {
        try
        {
            return _channel.TryReceive(maxLength, out frame);
        }
        catch (InvalidDataException e)
        {
            throw new ManagerProtocolException(e.Message);
        }
    }

    /// <summary>After a large frame, returns to a small buffer so an idle connection holds little memory.</summary>
    public void Shrink() => _channel.Shrink();

    public void Dispose() => _channel.Dispose();
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
