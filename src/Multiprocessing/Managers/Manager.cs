using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// A server that owns shared objects and serves them to any number of processes through proxies,
/// like Python's <c>multiprocessing.Manager()</c>. <see cref="StartAsync"/> starts the server in a
/// worker process (it dies with this process); <see cref="Serve"/> serves from this process, for
/// other machines or programs to <see cref="ConnectAsync"/> to. Proxies are the BCL interfaces
/// (<see cref="IDictionary{TKey, TValue}"/>, <see cref="IList{T}"/>) and travel to workers by handle.
/// <code>
/// await using var manager = await Manager.StartAsync();
/// var counts = manager.Dictionary&lt;string, int&gt;();
/// var p = new WorkerProcess(() => counts.AddOrUpdate("hits", 1, (_, n) => n + 1));
/// </code>
/// Objects live until the manager shuts down. A <c>name</c> makes an object findable: the same
/// name from any client of the manager returns the same object.
/// </summary>
public sealed class Manager : IAsyncDisposable, IManagerProxy
{
    private readonly ManagerClient _client;
    private readonly WorkerProcess? _serverProcess;
    private readonly ManagerServer? _server;
    private readonly string? _folder;
    private int _disposed;

    private Manager(ManagerClient client, EndPoint endpoint, WorkerProcess? serverProcess = null, ManagerServer? server = null, string? folder = null)
    {
        _client = client;
        Endpoint = endpoint;
        _serverProcess = serverProcess;
        _server = server;
        _folder = folder;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => 0;

    /// <summary>A manager that arrived in another process by handle: a client of the same server, which it does not own.</summary>
    internal static Manager Attach(ManagerClient client) => new(client, ManagerEndpoints.Parse(client.Endpoint));

    /// <summary>Where the manager listens: a <see cref="UnixDomainSocketEndPoint"/> or an <see cref="IPEndPoint"/> (with the real port).</summary>
    public EndPoint Endpoint { get; }

    /// <summary>A copy of the key clients must know; give it to <see cref="ConnectAsync"/> in another program.</summary>
    public byte[] AuthKey => [.. _client.AuthKey];

    /// <summary>The server process of a manager made by <see cref="StartAsync"/>; null otherwise.</summary>
    public WorkerProcess? ServerProcess => _serverProcess;

    /// <summary>
    /// Starts a server process and connects to it. It listens on a Unix socket in a private folder
    /// (or <see cref="ManagerOptions.Address"/>), and exits when this manager is disposed or this process dies.
    /// </summary>
    /// <exception cref="TimeoutException">The server did not listen within <see cref="ManagerOptions.StartTimeout"/>.</exception>
    /// <exception cref="WorkerCrashedException">The server process died while starting.</exception>
    public static async Task<Manager> StartAsync(ManagerOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ManagerOptions();
        options.Validate();
        var key = options.AuthKey is { } given ? [.. given] : RandomNumberGenerator.GetBytes(32);
        var folder = Path.Combine(Path.GetTempPath(), $"multiprocessing-manager-{Environment.ProcessId}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4))}");
        ResourceTracker.RegisterPath(folder); // before it exists: a kill in between leaves nothing
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(folder);
        else Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var address = ManagerEndpoints.Format(options.Address ?? new UnixDomainSocketEndPoint(Path.Combine(folder, "m")));
        var readyFile = Path.Combine(folder, "ready");
        var (maxFrame, maxConnections, maxPending, handshake, spin) = (options.MaxFrameBytes, options.MaxConnections, options.MaxPendingHandshakes, options.HandshakeTimeout, options.ReadSpin);
        var process = new WorkerProcess(() => ManagerServer.RunInWorker(address, key, readyFile, maxFrame, maxConnections, maxPending, handshake, spin)) { Name = "Manager" };
        try
        {
            await Task.Run(process.Start, cancellationToken).ConfigureAwait(false);
            var deadline = DateTime.UtcNow + options.StartTimeout;
            // The server writes its real endpoint (the port, when asked for port 0) once it listens.
            while (!File.Exists(readyFile))
            {
                if (!process.IsAlive)
                {
                    await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                    throw process.Exception is { } e
                        ? new MultiprocessingException($"The manager's server process failed to start: {e.Message}", e)
                        : new MultiprocessingException($"The manager's server process exited (code {process.ExitCode}) before it listened.");
                }
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"The manager's server process (pid {process.Pid}) did not listen within {options.StartTimeout.TotalSeconds:0} s.");
                await Task.Delay(5, cancellationToken).ConfigureAwait(false);
            }
            var endpoint = await File.ReadAllTextAsync(readyFile, cancellationToken).ConfigureAwait(false);
            var client = ManagerClient.For(endpoint, key);
            client.MaxFrameBytes = maxFrame;
            client.ReadSpin = spin;
            await Task.Run(client.Connect, cancellationToken).ConfigureAwait(false);
            return new Manager(client, ManagerEndpoints.Parse(endpoint), process, folder: folder);
        }
        catch
        {
            if (process.Pid != 0 && process.IsAlive) process.Kill();
            TryDelete(folder);
            throw;
        }
    }

    /// <summary>
    /// Serves from this process on <paramref name="endpoint"/> (an <see cref="IPEndPoint"/> on
    /// loopback, port 0 for a free one, or a <see cref="UnixDomainSocketEndPoint"/>) until the
    /// returned manager is disposed. Other programs reach it with <see cref="ConnectAsync"/> and the same key.
    /// </summary>
    /// <exception cref="ArgumentException">The endpoint is not loopback (see <see cref="ManagerOptions.AllowNonLoopback"/>) or the key is empty.</exception>
    public static Manager Serve(EndPoint endpoint, byte[] authKey, ManagerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(authKey);
        options = (options ?? new ManagerOptions()) with { AuthKey = authKey };
        options.Validate();
        ManagerOptions.CheckAddress(endpoint, options.AllowNonLoopback);
        var key = authKey.ToArray();
        var server = new ManagerServer(endpoint, key, options);
        var client = ManagerClient.For(ManagerEndpoints.Format(Reachable(server.LocalEndPoint)), key);
        client.MaxFrameBytes = options.MaxFrameBytes;
        client.ReadSpin = options.ReadSpin;
        return new Manager(client, server.LocalEndPoint, server: server);
    }

    /// <summary>Connects to a manager served elsewhere (<see cref="Serve"/>, or <see cref="StartAsync"/> with a TCP address).</summary>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The manager refused the key.</exception>
    /// <exception cref="MultiprocessingException">Nothing listens there.</exception>
    public static async Task<Manager> ConnectAsync(EndPoint endpoint, byte[] authKey, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(authKey);
        if (authKey.Length is 0 or > 1024) throw new ArgumentException("An auth key must be 1 to 1024 bytes long.", nameof(authKey));
        var client = ManagerClient.For(ManagerEndpoints.Format(endpoint), [.. authKey]);
        await Task.Run(client.Connect, cancellationToken).ConfigureAwait(false);
        return new Manager(client, endpoint);
    }

    /// <summary>A dictionary in the manager (Python's <c>manager.dict()</c>).</summary>
    /// <param name="name">Optional: the same name returns the same dictionary to every client.</param>
    public DictionaryProxy<TKey, TValue> Dictionary<TKey, TValue>(string? name = null) where TKey : notnull =>
        new(_client, Create(ServedKind.Dictionary, name));

    /// <summary>A list in the manager (Python's <c>manager.list()</c>).</summary>
    /// <param name="name">Optional: the same name returns the same list to every client.</param>
    public ListProxy<T> List<T>(string? name = null) => new(_client, Create(ServedKind.List, name));

    /// <summary>A bag of named values in the manager (Python's <c>manager.Namespace()</c>); use it as <c>dynamic</c>.</summary>
    /// <param name="name">Optional: the same name returns the same namespace to every client.</param>
    public NamespaceProxy Namespace(string? name = null) => new(_client, Create(ServedKind.Dictionary, name));

    /// <summary>A lock in the manager (Python's <c>manager.Lock()</c>).</summary>
    /// <param name="name">Optional: the same name returns the same lock to every client.</param>
    public LockProxy Lock(string? name = null) => new(_client, Create(ServedKind.Lock, name));

    /// <summary>A reentrant lock in the manager (Python's <c>manager.RLock()</c>): an <see cref="IProcessLock"/>, as <see cref="ProcessRLock"/>.</summary>
    /// <param name="name">A name other processes can create it by to share it; null for a fresh one.</param>
    public RLockProxy RLock(string? name = null) => new(_client, Create(ServedKind.RLock, name));

    /// <summary>An event in the manager (Python's <c>manager.Event()</c>): an <see cref="IProcessEvent"/>, as <see cref="ProcessEvent"/>.</summary>
    /// <param name="name">A name other processes can create it by to share it; null for a fresh one.</param>
    public EventProxy Event(string? name = null) => new(_client, Create(ServedKind.Event, name));

    /// <summary>A semaphore in the manager with no maximum (Python's <c>manager.Semaphore(n)</c>): an <see cref="IProcessSemaphore"/>, as <see cref="ProcessSemaphore"/>.</summary>
    /// <param name="initialCount">How many may acquire it before one waits; at least 0.</param>
    /// <param name="name">A name other processes can create it by to share it; null for a fresh one.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="initialCount"/> is negative.</exception>
    public SemaphoreProxy Semaphore(int initialCount, string? name = null) =>
        new(_client, Create(ServedKind.Semaphore, name, initialCount >= 0 ? initialCount : throw new ArgumentOutOfRangeException(nameof(initialCount), initialCount, "A semaphore's count cannot be negative."), int.MaxValue), null);

    /// <summary>A semaphore in the manager that refuses to be released past <paramref name="initialCount"/> (Python's <c>manager.BoundedSemaphore(n)</c>).</summary>
    /// <param name="initialCount">How many may acquire it before one waits, and the most its count may reach; at least 1.</param>
    /// <param name="name">A name other processes can create it by to share it; null for a fresh one.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="initialCount"/> is less than 1.</exception>
    public SemaphoreProxy BoundedSemaphore(int initialCount, string? name = null) =>
        new(_client, Create(ServedKind.Semaphore, name, initialCount >= 1 ? initialCount : throw new ArgumentOutOfRangeException(nameof(initialCount), initialCount, "A bounded semaphore's count must be at least 1."), initialCount), initialCount);

    /// <summary>A value in the manager (Python's <c>manager.Value(typecode, value)</c>), with atomic <see cref="ValueProxy{T}.Update"/>.</summary>
    /// <param name="initial">The starting value (ignored when <paramref name="name"/> names an existing value).</param>
    /// <param name="name">Optional: the same name returns the same value to every client.</param>
    public ValueProxy<T> Value<T>(T initial, string? name = null)
    {
        var bytes = ManagerSerialization.ToBytes(initial);
        return new(_client, Create(ServedKind.Value, name, bytes));
    }

    /// <summary>A queue in the manager (Python's <c>manager.Queue(maxsize)</c>).</summary>
    /// <param name="maxSize">0 for unbounded; otherwise Put waits while this many items are queued.</param>
    /// <param name="name">Optional: the same name returns the same queue to every client.</param>
    public QueueProxy<T> Queue<T>(int maxSize = 0, string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        return new(_client, Create(ServedKind.Queue, name, maxSize));
    }

    /// <summary>A queue in the manager that counts unfinished items (Python's <c>manager.JoinableQueue(maxsize)</c>), as <see cref="JoinableProcessQueue{T}"/>.</summary>
    /// <param name="maxSize">0 for unbounded; otherwise Put waits while this many items are queued.</param>
    /// <param name="name">Optional: the same name returns the same queue to every client.</param>
    public JoinableQueueProxy<T> JoinableQueue<T>(int maxSize = 0, string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        return new(_client, Create(ServedKind.JoinableQueue, name, maxSize));
    }

    /// <summary>A condition variable in the manager over a lock of its own (Python's <c>manager.Condition()</c>): an <see cref="IProcessCondition"/>, as <see cref="ProcessCondition"/>.</summary>
    /// <param name="name">Optional: the same name returns the same condition to every client.</param>
    public ConditionProxy Condition(string? name = null) => new(_client, Create(ServedKind.Condition, name));

    /// <summary>A barrier in the manager for <paramref name="parties"/> parties (Python's <c>manager.Barrier(parties)</c>): an <see cref="IProcessBarrier"/>, as <see cref="ProcessBarrier"/>.</summary>
    /// <param name="parties">How many parties must arrive for all of them to pass.</param>
    /// <param name="name">Optional: the same name returns the same barrier to every client (its parties are those of the first).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="parties"/> is less than 1.</exception>
    public BarrierProxy Barrier(int parties, string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parties, 1);
        return new(_client, Create(ServedKind.Barrier, name, parties));
    }

    /// <summary>An array of <paramref name="length"/> default values in the manager (Python's <c>manager.Array(typecode, [0] * n)</c>).</summary>
    /// <param name="length">The number of items, fixed.</param>
    /// <param name="name">Optional: the same name returns the same array to every client.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    public ArrayProxy<T> Array<T>(int length, string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return Array(Enumerable.Repeat(default(T)!, length), name);
    }

    /// <summary>An array in the manager holding <paramref name="items"/> (Python's <c>manager.Array(typecode, sequence)</c>); its length is fixed.</summary>
    /// <param name="items">The starting items (ignored when <paramref name="name"/> names an existing array).</param>
    /// <param name="name">Optional: the same name returns the same array to every client.</param>
    public ArrayProxy<T> Array<T>(IEnumerable<T> items, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        var values = items.ToArray();
        var packed = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePack.MessagePackWriter(packed);
        writer.WriteArrayHeader(values.Length);
        // Default values are alike: one serialization serves them all.
        byte[]? last = null;
        T? lastValue = default;
        for (var i = 0; i < values.Length; i++)
        {
            if (last is null || !EqualityComparer<T>.Default.Equals(values[i], lastValue)) (last, lastValue) = (ManagerSerialization.ToBytes(values[i]), values[i]);
            writer.Write(last);
        }
        writer.Flush();
        var id = Create(ServedKind.Array, name, packed.WrittenSpan.ToArray());
        return new(_client, id, name is null ? values.Length : -1);
    }

    /// <summary>
    /// Serves one instance of <typeparamref name="TImpl"/>, created in the manager, through a proxy
    /// implementing <typeparamref name="TService"/> (Python's <c>BaseManager.register</c>). Every call
    /// runs in the manager, one at a time; an exception it throws is rethrown here as its own type
    /// (or a <see cref="RemoteException"/>). The first call with a name creates the instance; later
    /// calls, from any client, attach to it.
    /// </summary>
    /// <exception cref="ArgumentException"><typeparamref name="TService"/> is not a public interface.</exception>
    /// <exception cref="NotSupportedException">A member cannot be called across processes (generic, ref/out, Task-returning, event); the message names it.</exception>
    public TService Register<TService, TImpl>(string name) where TService : class where TImpl : class, TService, new()
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ServiceMethods.Validate(typeof(TService), typeof(TImpl));
        var id = Create(ServedKind.Service, name, DelegateShipper.TypeName(typeof(TService)), DelegateShipper.TypeName(typeof(TImpl)));
        return ServiceProxy.Create<TService>(_client, id);
    }

    /// <summary>
    /// Caches a pure function's results in the manager, shared by every process (Python's
    /// <c>functools.lru_cache</c> is per process). The returned function looks the argument up in the
    /// manager; on a miss it computes locally and stores the result. At most <paramref name="maxEntries"/>
    /// results are kept, least recently used dropped first. It travels to workers by handle, so a pool of
    /// workers shares one cache. Arguments compare by their serialized form.
    /// </summary>
    /// <exception cref="SerializationException"><paramref name="function"/> cannot travel to other processes.</exception>
    public Func<TArg, TResult> Memoize<TArg, TResult>(Func<TArg, TResult> function, int maxEntries = 1024, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        ManagerSerialization.ShipFunction(function); // refuse now, not in a worker, what cannot travel
        return new MemoizedFunction<TArg, TResult>(_client, Create(ServedKind.Cache, name, maxEntries), function).Invoke;
    }

    /// <summary>Shuts the server down (a manager from <see cref="ConnectAsync"/> only lets go of it); proxies stop working.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        if (_server is not null)
        {
            _server.Dispose();
            _client.Close();
        }
        if (_serverProcess is not null)
        {
            try
            {
                using var call = _client.Begin(0, ManagerOp.Shutdown);
                call.Send();
            }
            catch (Exception)
            {
                // Already gone: the wait below returns at once.
            }
            _client.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await _serverProcess.WaitForExitAsync(timeout.Token).ConfigureAwait(false); }
            catch (OperationCanceledException)
            {
                _serverProcess.Kill();
                await _serverProcess.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
        }
        if (_folder is not null) TryDelete(_folder);
    }

    /// <inheritdoc />
    public override string ToString() => $"<Manager at {_client.Endpoint}>";

    private long Create(ServedKind kind, string? name, params object[] extra)
    {
        if (Volatile.Read(ref _disposed) == 1) throw new ObjectDisposedException(nameof(Manager), "This manager was disposed; start or connect a new one.");
        if (name is { Length: 0 or > 256 }) throw new ArgumentException("A manager object's name must be 1 to 256 characters long.", nameof(name));
        using var call = _client.Begin(0, ManagerOp.Create);
        call.Write((byte)kind);
        if (name is null) call.Write((string?)null); else call.Write(name);
        foreach (var item in extra)
        {
            switch (item)
            {
                case byte[] bytes: call.Write(bytes); break;
                case int number: call.Write(number); break;
                case string text: call.Write(text); break;
            }
        }
        var reply = call.Send();
        return reply.ReadInt64();
    }

    /// <summary>An address a client can connect to: a wildcard listening address is reached through loopback.</summary>
    private static EndPoint Reachable(EndPoint bound) => bound switch
    {
        IPEndPoint { Address: var a } ip when a.Equals(IPAddress.Any) => new IPEndPoint(IPAddress.Loopback, ip.Port),
        IPEndPoint { Address: var a } ip when a.Equals(IPAddress.IPv6Any) => new IPEndPoint(IPAddress.IPv6Loopback, ip.Port),
        _ => bound,
    };

    private static void TryDelete(string folder)
    {
        try { Directory.Delete(folder, recursive: true); } catch (Exception) { }
        ResourceTracker.UnregisterPath(folder);
    }
}
