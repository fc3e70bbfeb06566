using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading.Channels;

namespace Multiprocessing;

/// <summary>
/// Listens for connections from other processes, related or not, like Python's
/// <c>multiprocessing.connection.Listener</c>: each client that connects with <see cref="Connection.Connect{T}(string, byte[], ConnectOptions)"/>
/// and the same auth key becomes a <see cref="Connection{T}"/> here, returned by <see cref="Accept"/>.
/// </summary>
/// <remarks>
/// <para>
/// The address is a Unix socket path (<c>/run/app/jobs.sock</c> or <c>unix:/run/app/jobs.sock</c>) or a TCP endpoint
/// (<c>127.0.0.1:5000</c>, <c>localhost:0</c> for a free port, <c>[::1]:5000</c>); null makes a Unix socket in a private
/// (0700) folder. A TCP listener binds loopback only, unless <see cref="ListenerOptions.AllowNonLoopback"/> is set.
/// <see cref="Address"/> is where it listens, with the real port: hand it to the other process.
/// </para>
/// <para>
/// Every connection opens with the HMAC-SHA256 challenge that remote managers use, in both directions, before any
/// message is read: a client without the key is refused and never gets a byte deserialized. Without a key (null) the
/// challenge still runs with a public stand-in, so a key on one side only is reported, not waited on; anyone who can
/// reach the address can then connect (for a Unix socket, whoever may open its folder).
/// </para>
/// <para>
/// Connections are taken and authenticated as they arrive, whether or not <see cref="Accept"/> is being called;
/// <see cref="Accept"/> returns them in order. A client that failed the challenge surfaces there as an
/// <see cref="AuthenticationException"/> (Python's <c>AuthenticationError</c> from <c>accept()</c>); the listener goes on
/// listening, so a serving loop catches it and accepts again.
/// </para>
/// </remarks>
/// <typeparam name="T">The message type of the accepted connections.</typeparam>
/// <example><code>
/// using var listener = new Listener&lt;string&gt;("localhost:0", authKey);
/// // in another program: using var c = Connection.Connect&lt;string&gt;(address, authKey); c.Send("hello");
/// using var connection = listener.Accept();
/// Console.WriteLine(connection.Receive());
/// </code></example>
public sealed class Listener<T> : IDisposable, IAsyncDisposable, IWaitable
{
    private readonly Socket _socket;
    private readonly byte[] _key;
    private readonly ListenerOptions _options;
    private readonly Channel<Accepted> _accepted = Channel.CreateUnbounded<Accepted>();
    private readonly ConcurrentDictionary<FrameChannel, byte> _handshaking = new();
    private readonly string? _socketFile;
    private readonly string? _folder;
    private string? _lastAccepted;
    private int _closed;

    /// <summary>Listens on <paramref name="address"/> (Python: <c>Listener(address, authkey=key)</c>).</summary>
    /// <param name="address">A Unix socket path, or host:port on loopback (port 0: a free port); null: a Unix socket in a private folder.</param>
    /// <param name="authKey">The secret clients must prove they know (1 to 1024 bytes); null for none.</param>
    /// <param name="options">Backlog, handshake timeout, message bound, non-loopback addresses.</param>
    /// <exception cref="ArgumentException">The address is not one, is off this machine without <see cref="ListenerOptions.AllowNonLoopback"/>, or the key is empty.</exception>
    /// <exception cref="SocketException">The address is in use (for a Unix socket: a file is there; remove a stale one).</exception>
    public Listener(string? address = null, byte[]? authKey = null, ListenerOptions? options = null)
    {
        _options = options ?? new ListenerOptions();
        _options.Validate();
        _key = ConnectionAddress.Key(authKey, nameof(authKey));
        EndPoint endpoint;
        if (address is null)
        {
            _folder = ConnectionAddress.PrivateFolder();
            endpoint = new UnixDomainSocketEndPoint(Path.Combine(_folder, "l"));
        }
        else
        {
            endpoint = ConnectionAddress.Parse(address, nameof(address));
            if (endpoint is DnsEndPoint) endpoint = ConnectionAddress.ResolveAsync(endpoint, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            ConnectionAddress.CheckListenable(endpoint, _options.AllowNonLoopback, authKey is not null, nameof(address));
        }
        _socket = ManagerEndpoints.NewSocket(endpoint);
        try
        {
            _socket.Bind(endpoint);
            // After the bind succeeded: the socket file is ours now (before it, the path may hold another listener's).
            if (_folder is null && endpoint is UnixDomainSocketEndPoint)
            {
                _socketFile = endpoint.ToString();
                if (_socketFile is not null) ResourceTracker.RegisterPath(_socketFile);
            }
            _socket.Listen(_options.Backlog);
        }
        catch
        {
            _socket.Dispose();
            if (_socketFile is not null) ConnectionAddress.Remove(_socketFile, folder: false);
            if (_folder is not null) ConnectionAddress.Remove(_folder, folder: true);
            throw;
        }
        Address = ConnectionAddress.Format(_socket.LocalEndPoint ?? endpoint);
        new Thread(AcceptLoop) { IsBackground = true, Name = "Multiprocessing listener" }.Start();
    }

    /// <summary>Where the listener listens, as an address <see cref="Connection.Connect{T}(string, byte[], ConnectOptions)"/> takes: the socket's path, or host:port with the real port.</summary>
    public string Address { get; }

    /// <summary>
    /// The address of the client last returned by <see cref="Accept"/> (Python's <c>last_accepted</c>): host:port for TCP;
    /// for a Unix socket, the client's path, usually empty as clients do not bind one; null before the first.
    /// </summary>
    public string? LastAccepted => Volatile.Read(ref _lastAccepted);

    /// <summary>True once <see cref="Close"/> was called.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Returns the next client's connection, waiting until one has connected and passed the auth challenge.</summary>
    /// <exception cref="AuthenticationException">The next client did not prove it knows the key (or did not answer in time); the listener goes on.</exception>
    /// <exception cref="ObjectDisposedException">The listener is closed.</exception>
    public Connection<T> Accept()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        if (_accepted.Reader.TryRead(out var next)) return Take(next);
        return AcceptAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Returns the next client's connection without blocking a thread.</summary>
    /// <exception cref="AuthenticationException">The next client did not prove it knows the key (or did not answer in time); the listener goes on.</exception>
    /// <exception cref="ObjectDisposedException">The listener is closed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public async ValueTask<Connection<T>> AcceptAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        Accepted next;
        try
        {
            next = await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(Listener<T>), "The listener was closed.");
        }
        return Take(next);
    }

    /// <summary>
    /// Stops listening and removes the Unix socket file (Python's <c>close()</c>). Connections already accepted stay open;
    /// clients that connected but were not accepted see their connection closed.
    /// </summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _accepted.Writer.TryComplete();
        try { _socket.Dispose(); } catch (SocketException) { }
        foreach (var pending in _handshaking.Keys) pending.Dispose();
        while (_accepted.Reader.TryRead(out var left)) left.Wire?.Dispose();
        if (_socketFile is not null) ConnectionAddress.Remove(_socketFile, folder: false);
        if (_folder is not null) ConnectionAddress.Remove(_folder, folder: true);
    }

    /// <summary>Closes the listener (see <see cref="Close"/>).</summary>
    public void Dispose() => Close();

    /// <summary>Closes the listener (see <see cref="Close"/>).</summary>
    public ValueTask DisposeAsync()
    {
        Close();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public override string ToString() => $"Listener<{typeof(T).Name}>({Address}{(IsClosed ? ", closed" : "")})";

    bool IWaitable.IsReady
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            return _accepted.Reader.TryPeek(out _);
        }
    }

    Task IWaitable.WhenReadyAsync(CancellationToken cancellationToken) => _accepted.Reader.WaitToReadAsync(cancellationToken).AsTask();

    private Connection<T> Take(Accepted next)
    {
        if (next.Error is not null) throw next.Error;
        Volatile.Write(ref _lastAccepted, next.Peer);
        var who = next.Peer.Length > 0 ? "client at " + next.Peer : "client of " + Address;
        return new Connection<T>(new SocketTransport<T>(next.Wire!, who));
    }

    private void AcceptLoop()
    {
        while (!IsClosed)
        {
            Socket client;
            try
            {
                client = _socket.Accept();
            }
            catch (Exception) when (IsClosed)
            {
                return;
            }
            catch (SocketException)
            {
                // Out of descriptors, or a reset during accept: keep listening for the others.
                Thread.Sleep(10);
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            new Thread(() => Handshake(client)) { IsBackground = true, Name = "Multiprocessing listener handshake" }.Start();
        }
    }

    /// <summary>Runs the server's side of the challenge on a new connection, and queues it (or why it failed) for <see cref="Accept"/>.</summary>
    private void Handshake(Socket client)
    {
        var peer = PeerOf(client);
        var from = peer.Length > 0 ? peer : "a local process";
        FrameChannel channel;
        try
        {
            channel = new FrameChannel(client, _options.MaxMessageBytes, bufferSize: 16 * 1024);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            client.Dispose(); // reset before it could be read from: nothing to report
            return;
        }
        _handshaking[channel] = 0;
        Exception? error = null;
        try
        {
            var limit = (int)_options.HandshakeTimeout.TotalMilliseconds;
            client.ReceiveTimeout = limit;
            client.SendTimeout = limit;
            if (ManagerAuth.Server(channel, _key, static () => true, ManagerAuth.Realm.Listener) is null)
            {
                error = new AuthenticationException(
                    $"A client from {from} was refused: it did not prove it knows the auth key of the listener at {Address}. " +
                    "The listener goes on listening; accept again.");
            }
            else
            {
                client.ReceiveTimeout = 0;
                client.SendTimeout = 0;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
        {
            error = new AuthenticationException(
                $"A client from {from} did not answer the auth challenge within {_options.HandshakeTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s " +
                "(ListenerOptions.HandshakeTimeout) and was disconnected. The listener goes on listening; accept again.", e);
        }
        catch (Exception e)
        {
            // Gone during the challenge (a reset, the listener closing), or anything else: this connection only, never the process.
            error = new AuthenticationException($"A client from {from} failed the auth challenge ({e.Message}). The listener goes on listening; accept again.", e);
        }
        finally
        {
            _handshaking.TryRemove(channel, out _);
        }
        if (error is not null) channel.Dispose();
        // After Close the queue is complete: the write fails, and the connection is closed rather than left open.
        if (!_accepted.Writer.TryWrite(new Accepted(error is null ? channel : null, peer, error))) channel.Dispose();
    }

    private static string PeerOf(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint switch
            {
                IPEndPoint ip => ip.ToString(),
                { } other => other.ToString() ?? "",
                null => "",
            };
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or ArgumentException)
        {
            return "";
        }
    }

    /// <summary>A connection that passed the challenge (its channel), or why one did not (the error); the peer's address either way.</summary>
    private readonly record struct Accepted(FrameChannel? Wire, string Peer, Exception? Error);
}
