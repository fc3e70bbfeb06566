using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using MessagePack;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Multiprocessing;

/// <summary>
/// The manager's server: owns the served objects and answers requests, one thread per connection
/// (a request may block on a lock or a queue). Every connection first passes the HMAC challenge of
/// <see cref="ManagerAuth"/>; a malformed or oversized frame closes that connection only.
/// </summary>
internal sealed class ManagerServer : IDisposable
{
    private readonly Socket _listener;
    private readonly byte[] _authKey;
    private readonly ManagerOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<long, ServedObject> _objects = new();
    private readonly Dictionary<string, long> _names = [];
    private readonly ConcurrentDictionary<WireConnection, byte> _connections = new();
    // Connections in the auth challenge, oldest first (a new one beyond the limit closes the oldest), and how many passed it.
    private readonly LinkedList<WireConnection> _pending = [];
    private int _authenticated;
    private readonly Dictionary<Guid, int> _sessions = [];
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? _socketFile;
    private readonly bool _acceptShutdown;
    private long _lastId;
    private int _stopping;

    /// <param name="endpoint">Where to listen.</param>
    /// <param name="authKey">The key clients must prove they know.</param>
    /// <param name="options">Limits and logging.</param>
    /// <param name="acceptShutdown">Whether a client may stop the server: only for a server process whose owner is its client.</param>
    public ManagerServer(EndPoint endpoint, byte[] authKey, ManagerOptions options, bool acceptShutdown = false)
    {
        _acceptShutdown = acceptShutdown;
        _authKey = authKey;
        _options = options;
        _logger = options.Logger ?? NullLogger.Instance;
        _listener = ManagerEndpoints.NewSocket(endpoint);
        try
        {
            if (endpoint is UnixDomainSocketEndPoint) _socketFile = endpoint.ToString();
            _listener.Bind(endpoint);
            // After the bind succeeded: the socket file is ours now (before it, the path may hold another server's).
            if (_socketFile is not null) ResourceTracker.RegisterPath(_socketFile);
            _listener.Listen(512);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
        LocalEndPoint = _listener.LocalEndPoint!;
        new Thread(AcceptLoop) { IsBackground = true, Name = "Multiprocessing manager listener" }.Start();
    }

    /// <summary>Where the server listens (with the real port when asked for port 0).</summary>
    public EndPoint LocalEndPoint { get; }

    /// <summary>Completes when the server has stopped (disposed, or told to shut down by a client).</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>The body of a local manager's server process: serves until told to shut down, or the parent dies.</summary>
    internal static void RunInWorker(string address, byte[] authKey, string readyFile, int maxFrameBytes, int maxConnections, int maxPendingHandshakes, TimeSpan handshakeTimeout, TimeSpan readSpin)
    {
        using var server = new ManagerServer(ManagerEndpoints.Parse(address), authKey,
            new ManagerOptions { MaxFrameBytes = maxFrameBytes, MaxConnections = maxConnections, MaxPendingHandshakes = maxPendingHandshakes, HandshakeTimeout = handshakeTimeout, ReadSpin = readSpin }, acceptShutdown: true);
        // Written whole, then renamed: the parent never reads half an address.
        File.WriteAllText(readyFile + ".tmp", ManagerEndpoints.Format(server.LocalEndPoint));
        File.Move(readyFile + ".tmp", readyFile);
        server.Stopped.Wait();
    }

    private void AcceptLoop()
    {
        while (Volatile.Read(ref _stopping) == 0)
        {
            Socket client;
            try { client = _listener.Accept(); }
            catch (Exception) when (Volatile.Read(ref _stopping) == 1) { return; }
            catch (SocketException e)
            {
                // Out of descriptors or a reset during accept: keep serving the others.
                _logger.LogWarning("Manager accept failed: {Error}", e.Message);
                Thread.Sleep(10);
                continue;
            }
            catch (ObjectDisposedException) { return; }
            if (Volatile.Read(ref _authenticated) >= _options.MaxConnections)
            {
                _logger.LogWarning("Manager refused a connection: {Count} clients are connected (MaxConnections).", Volatile.Read(ref _authenticated));
                ManagerAuth.RefuseFull(client);
                client.Dispose();
                continue;
            }
            var connection = new WireConnection(client);
            _connections[connection] = 0;
            WireConnection? evicted = null;
            LinkedListNode<WireConnection> waiting;
            lock (_pending)
            {
                if (_pending.Count >= _options.MaxPendingHandshakes)
                {
                    evicted = _pending.First!.Value;
                    _pending.RemoveFirst();
                }
                waiting = _pending.AddLast(connection);
            }
            if (evicted is not null)
            {
                _logger.LogWarning("Manager closed a connection from {Peer} that had not answered the challenge: {Count} were waiting (MaxPendingHandshakes).", evicted.Peer, _options.MaxPendingHandshakes);
                evicted.Dispose(); // its thread sees the socket closed and ends
            }
            new Thread(() => Serve(connection, waiting)) { IsBackground = true, Name = "Multiprocessing manager connection" }.Start();
        }
    }

    private void Serve(WireConnection connection, LinkedListNode<WireConnection> waiting)
    {
        var peer = connection.Peer;
        Guid? session = null;
        var counted = false;
        var joined = false;
        try
        {
            connection.Socket.ReceiveTimeout = (int)_options.HandshakeTimeout.TotalMilliseconds;
            session = ManagerAuth.Server(connection, _authKey, admit: () =>
            {
                lock (_pending)
                {
                    if (waiting.List is null) return false; // closed meanwhile to make room: the socket is dead anyway
                    _pending.Remove(waiting);
                }
                if (Interlocked.Increment(ref _authenticated) > _options.MaxConnections)
                {
                    Interlocked.Decrement(ref _authenticated);
                    _logger.LogWarning("Manager refused a client from {Peer}: {Count} clients are connected (MaxConnections).", peer, _options.MaxConnections);
                    return false;
                }
                counted = true;
                return true;
            });
            if (session is null)
            {
                if (!counted) _logger.LogWarning("Manager refused a connection from {Peer}: it did not answer the challenge with the auth key, or no slot was free.", peer);
                return;
            }
            connection.Socket.ReceiveTimeout = 0;
            connection.SpinTicks = WireConnection.Ticks(_options.ReadSpin);
            Join(session.Value);
            joined = true;
            while (connection.TryReceiveFrame(_options.MaxFrameBytes, out var frame))
            {
                if (!Handle(connection, frame, session.Value)) return;
                connection.Shrink();
            }
        }
        catch (Exception e) when (e is ManagerProtocolException or MessagePackSerializationException or EndOfStreamException or OverflowException)
        {
            _logger.LogWarning("Manager closed the connection from {Peer}: malformed request ({Error}).", peer, e.Message);
        }
        catch (SocketException e)
        {
            if (session is null) _logger.LogWarning("Manager refused a connection from {Peer}: {Error} during the challenge.", peer, e.SocketErrorCode);
        }
        catch (ObjectDisposedException)
        {
            // The server is stopping.
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Manager closed the connection from {Peer} after an unexpected error.", peer);
        }
        finally
        {
            lock (_pending)
                if (waiting.List is not null) _pending.Remove(waiting);
            if (counted) Interlocked.Decrement(ref _authenticated);
            _connections.TryRemove(connection, out _);
            connection.Dispose();
            if (session is { } s && joined) Leave(s);
        }
    }

    /// <summary>Answers one request; false when it asked the server to shut down.</summary>
    private bool Handle(WireConnection connection, ReadOnlyMemory<byte> frame, Guid session)
    {
        var reader = new MessagePackReader(frame);
        var id = reader.ReadInt64();
        var op = (ManagerOp)reader.ReadByte();
        var output = connection.Output;
        output.BeginFrame();
        try
        {
            var writer = new MessagePackWriter(output);
            writer.Write((byte)0);
            if (id == 0)
            {
                if (op == ManagerOp.Shutdown)
                {
                    if (!_acceptShutdown) throw new InvalidOperationException("This manager is served by another program; only that program can stop it (by disposing its Manager).");
                    writer.Flush();
                    output.EndFrame();
                    connection.Flush();
                    Dispose();
                    return false;
                }
                if (op != ManagerOp.Create) throw new ManagerProtocolException($"operation {op} does not apply to the manager");
                writer.Write(Create(ref reader));
            }
            else if (_objects.TryGetValue(id, out var target)) target.Handle(op, ref reader, ref writer, session);
            else throw new KeyNotFoundException($"The manager has no object with id {id}: the proxy belongs to another manager, or to an earlier run of this one.");
            if (!reader.End) throw new ManagerProtocolException($"{reader.Sequence.Length - reader.Consumed} unread byte(s) after a {op} request");
            writer.Flush();
            output.EndFrame();
        }
        catch (ServedUserException e)
        {
            WriteError(output, e.InnerException!);
        }
        catch (Exception e) when (e is not (ManagerProtocolException or MessagePackSerializationException or EndOfStreamException or OverflowException))
        {
            WriteError(output, e);
        }
        connection.Flush();
        return true;
    }

    private static void WriteError(FrameBuffer output, Exception e)
    {
        output.AbandonFrame();
        output.BeginFrame();
        var writer = new MessagePackWriter(output);
        writer.Write((byte)1);
        ExceptionShipper.Write(ref writer, e);
        writer.Flush();
        output.EndFrame();
    }

    private long Create(ref MessagePackReader reader)
    {
        var kind = (ServedKind)reader.ReadByte();
        var name = reader.TryReadNil() ? null : reader.ReadString();
        if (name is { Length: 0 or > 256 }) throw new ArgumentException("A manager object's name must be 1 to 256 characters long.", nameof(name));
        Func<ServedObject> make = kind switch
        {
            ServedKind.Dictionary => () => new ServedDictionary(),
            ServedKind.List => () => new ServedList(),
            ServedKind.Lock => () => new ServedLock(),
            ServedKind.Event => () => new ServedEvent(),
            ServedKind.RLock => () => new ServedRLock(),
            ServedKind.Semaphore => SemaphoreFactory(ref reader),
            ServedKind.Value => ValueFactory(ref reader),
            ServedKind.Queue => QueueFactory(ref reader, joinable: false),
            ServedKind.JoinableQueue => QueueFactory(ref reader, joinable: true),
            ServedKind.Condition => () => new ServedCondition(),
            ServedKind.Barrier => BarrierFactory(ref reader),
            ServedKind.Array => ArrayFactory(ref reader),
            ServedKind.Cache => CacheFactory(ref reader),
            ServedKind.Service => ServiceFactory(ref reader),
            _ => throw new ManagerProtocolException($"unknown object kind {(byte)kind}"),
        };
        if (name is null)
        {
            var id = Interlocked.Increment(ref _lastId);
            _objects[id] = make();
            return id;
        }
        lock (_names)
        {
            if (_names.TryGetValue(name, out var existing))
            {
                var found = _objects[existing];
                if (found.Kind != kind)
                    throw new InvalidOperationException($"The name '{name}' already names a {found.Kind} in this manager, not a {kind}. Choose another name.");
                return existing;
            }
            var id = Interlocked.Increment(ref _lastId);
            _objects[id] = make();
            _names[name] = id;
            return id;
        }
    }

    private static Func<ServedObject> ValueFactory(ref MessagePackReader reader)
    {
        var initial = reader.ReadBytes()?.ToArray() ?? throw new ManagerProtocolException("a value needs an initial value");
        return () => new ServedValue(initial);
    }

    private static Func<ServedObject> SemaphoreFactory(ref MessagePackReader reader)
    {
        var (initial, maximum) = (reader.ReadInt32(), reader.ReadInt32());
        if (initial < 0 || maximum < Math.Max(initial, 1)) throw new ArgumentOutOfRangeException(nameof(initial), initial, $"A semaphore's count must be at least 0 and at most its maximum ({maximum}).");
        return () => new ServedSemaphore(initial, maximum);
    }

    private static Func<ServedObject> QueueFactory(ref MessagePackReader reader, bool joinable)
    {
        var max = reader.ReadInt32();
        return () => new ServedQueue(max, joinable);
    }

    private static Func<ServedObject> BarrierFactory(ref MessagePackReader reader)
    {
        var parties = reader.ReadInt32();
        if (parties < 1) throw new ArgumentOutOfRangeException(nameof(parties), parties, "A barrier needs at least 1 party.");
        return () => new ServedBarrier(parties);
    }

    private static Func<ServedObject> ArrayFactory(ref MessagePackReader reader)
    {
        var items = ServedArray.ReadItems(reader.ReadBytes()?.ToArray() ?? throw new ManagerProtocolException("an array needs its items"));
        return () => new ServedArray(items);
    }

    private static Func<ServedObject> CacheFactory(ref MessagePackReader reader)
    {
        var max = reader.ReadInt32();
        if (max <= 0) throw new ArgumentOutOfRangeException(nameof(max), max, "A shared cache needs room for at least one entry.");
        return () => new ServedCache(max);
    }

    private static Func<ServedObject> ServiceFactory(ref MessagePackReader reader)
    {
        var service = reader.ReadString() ?? throw new ManagerProtocolException("a service needs an interface name");
        var implementation = reader.ReadString() ?? throw new ManagerProtocolException("a service needs a class name");
        return () => new ServedService(DelegateShipper.ResolveType(service), DelegateShipper.ResolveType(implementation));
    }

    private void Join(Guid session)
    {
        lock (_sessions) _sessions[session] = _sessions.GetValueOrDefault(session) + 1;
    }

    private void Leave(Guid session)
    {
        lock (_sessions)
        {
            var left = _sessions.GetValueOrDefault(session) - 1;
            if (left > 0) { _sessions[session] = left; return; }
            _sessions.Remove(session);
        }
        // The client process closed its last connection: it exited or died. Free what it held.
        foreach (var served in _objects.Values) served.SessionEnded(session);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 1) return;
        try { _listener.Dispose(); } catch (Exception) { }
        foreach (var connection in _connections.Keys) connection.Dispose();
        if (_socketFile is not null)
        {
            try { File.Delete(_socketFile); } catch (Exception) { }
            ResourceTracker.UnregisterPath(_socketFile);
        }
        _stopped.TrySetResult();
    }
}
