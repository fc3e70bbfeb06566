using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// A process's way to one manager: authenticated connections, kept in a pool so each thread that
/// calls has one of its own (a call may block in the server on a lock or a queue) and proxies
/// need no locking. One instance per (endpoint, key) per process, shared by all its proxies, so a
/// proxy that arrives in a worker by handle finds the connections already there.
/// </summary>
internal sealed class ManagerClient
{
    private static readonly ConcurrentDictionary<(string Endpoint, string Key), ManagerClient> Shared = new();

    private readonly ConcurrentBag<WireConnection> _idle = [];
    private readonly EndPoint _endpoint;
    private volatile bool _closed;

    private ManagerClient(string endpoint, byte[] authKey)
    {
        Endpoint = endpoint;
        AuthKey = authKey;
        _endpoint = ManagerEndpoints.Parse(endpoint);
    }

    /// <summary>Where the manager listens, as text ("unix:/path" or "tcp:host:port").</summary>
    public string Endpoint { get; }

    public byte[] AuthKey { get; }

    /// <summary>Identifies this process to the server, which frees what it held when its last connection closes.</summary>
    public Guid Session { get; } = Guid.NewGuid();

    /// <summary>The largest reply this client accepts.</summary>
    public int MaxFrameBytes { get; set; } = ManagerOptions.DefaultMaxFrameBytes;

    /// <summary>How long a read polls before it sleeps (see <see cref="ManagerOptions.ReadSpin"/>).</summary>
    public TimeSpan ReadSpin { get; set; } = WireConnection.DefaultSpin;

    public static ManagerClient For(string endpoint, byte[] authKey)
    {
        var key = (endpoint, Convert.ToHexString(authKey));
        while (true)
        {
            var client = Shared.GetOrAdd(key, static (k, bytes) => new ManagerClient(k.Endpoint, bytes), authKey);
            if (!client._closed) return client;
            Shared.TryRemove(new KeyValuePair<(string, string), ManagerClient>(key, client));
        }
    }

    /// <summary>Opens and authenticates one connection now (so a wrong key or a dead endpoint fails early), and keeps it.</summary>
    public void Connect() => _idle.Add(Open());

    /// <summary>Starts a request to object <paramref name="objectId"/>; write the arguments to the call's writer, then <see cref="ManagerCall.Send"/>.</summary>
    public ManagerCall Begin(long objectId, ManagerOp op)
    {
        if (_closed) throw new ObjectDisposedException(nameof(Manager), $"The manager at {Endpoint} was shut down; its proxies no longer work.");
        var connection = _idle.TryTake(out var idle) ? idle : Open();
        return new ManagerCall(this, connection, objectId, op);
    }

    internal void Return(WireConnection connection, bool healthy)
    {
        if (healthy && !_closed) _idle.Add(connection);
        else connection.Dispose();
    }

    /// <summary>The manager is gone: drop the pooled connections.</summary>
    public void Close()
    {
        _closed = true;
        while (_idle.TryTake(out var connection)) connection.Dispose();
        Shared.TryRemove(new KeyValuePair<(string, string), ManagerClient>((Endpoint, Convert.ToHexString(AuthKey)), this));
    }

    private WireConnection Open()
    {
        var socket = ManagerEndpoints.NewSocket(_endpoint);
        try { socket.Connect(_endpoint); }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new MultiprocessingException($"Could not connect to the manager at {Endpoint}: {e.Message}. Is it running, and is the address right?", e);
        }
        var connection = new WireConnection(socket);
        try
        {
            socket.ReceiveTimeout = 30_000;
            ManagerAuth.Client(connection, AuthKey, Session, Endpoint);
            socket.ReceiveTimeout = 0;
            connection.SpinTicks = WireConnection.Ticks(ReadSpin);
            return connection;
        }
        catch (Exception e)
        {
            connection.Dispose();
            if (e is AuthenticationException) throw;
            throw new MultiprocessingException($"The manager at {Endpoint} did not complete the connection handshake: {e.Message}", e);
        }
    }
}

/// <summary>
/// One request and its reply on a pooled connection. Use with <c>using</c>: the reply's bytes stay
/// valid until disposal, which returns the connection to the pool. Readonly (a <c>using</c> local
/// is), so its state lives on the connection.
/// </summary>
internal readonly ref struct ManagerCall
{
    private readonly ManagerClient _client;
    private readonly WireConnection _connection;

    internal ManagerCall(ManagerClient client, WireConnection connection, long objectId, ManagerOp op)
    {
        _client = client;
        _connection = connection;
        connection.CallSent = false;
        connection.CallAnswered = false;
        connection.Output.Clear();
        connection.Output.BeginFrame();
        var writer = new MessagePackWriter(connection.Output);
        writer.Write(objectId);
        writer.Write((byte)op);
        writer.Flush();
    }

    public void Write(long value) { var w = new MessagePackWriter(_connection.Output); w.Write(value); w.Flush(); }
    public void Write(int value) { var w = new MessagePackWriter(_connection.Output); w.Write(value); w.Flush(); }
    public void Write(byte value) { var w = new MessagePackWriter(_connection.Output); w.Write(value); w.Flush(); }
    public void Write(string? value) { var w = new MessagePackWriter(_connection.Output); if (value is null) w.WriteNil(); else w.Write(value); w.Flush(); }
    public void Write(ReadOnlySpan<byte> bytes) { var w = new MessagePackWriter(_connection.Output); w.Write(bytes); w.Flush(); }
    public void WriteArrayHeader(int count) { var w = new MessagePackWriter(_connection.Output); w.WriteArrayHeader(count); w.Flush(); }

    /// <summary>Writes a value in its serialized form.</summary>
    public void WriteValue<T>(T value) => Write(ManagerSerialization.ToBytes(value));

    /// <summary>Sends the request and returns a reader over the reply's results; rethrows what the server threw.</summary>
    public MessagePackReader Send()
    {
        _connection.Output.EndFrame();
        _connection.CallSent = true;
        ReadOnlyMemory<byte> frame;
        try
        {
            _connection.Flush();
            if (!_connection.TryReceiveFrame(_client.MaxFrameBytes, out frame))
                throw new MultiprocessingException($"The manager at {_client.Endpoint} closed the connection: it shut down or died.");
        }
        catch (SocketException e)
        {
            throw new MultiprocessingException($"The connection to the manager at {_client.Endpoint} failed: {e.Message}. The manager shut down or died.", e);
        }
        catch (ManagerProtocolException e)
        {
            throw new MultiprocessingException($"The manager at {_client.Endpoint} sent a malformed reply ({e.Message}).", e);
        }
        var reader = new MessagePackReader(frame);
        var status = reader.ReadByte();
        _connection.CallAnswered = true;
        if (status != 0) throw ExceptionShipper.Read(ref reader);
        return reader;
    }

    /// <summary>Reads a value written by the server in serialized form.</summary>
    public static T ReadValue<T>(ref MessagePackReader reader) =>
        ManagerSerialization.FromBytes<T>(reader.ReadBytes() ?? throw new MultiprocessingException("The manager sent no value where one was expected."));

    public void Dispose()
    {
        _connection.Shrink();
        // Unsent, the connection is clean and can be reused; sent, only once its reply has been read.
        _client.Return(_connection, !_connection.CallSent || _connection.CallAnswered);
    }
}
