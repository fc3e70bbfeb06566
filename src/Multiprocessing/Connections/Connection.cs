using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;

namespace Multiprocessing;

/// <summary>
/// The functions of Python's <c>multiprocessing.connection</c> module: <see cref="Connect{T}(string, byte[], ConnectOptions)"/>
/// (Python's <c>Client</c>) reaches a <see cref="Listener{T}"/> in any process on this machine (or, over TCP, another),
/// and <see cref="Wait"/> (Python's <c>wait</c>) waits until some of several connections, queues, processes and
/// listeners are ready.
/// </summary>
/// <example><code>
/// // In one program:
/// using var listener = new Listener&lt;string&gt;("/tmp/app.sock", key);
/// using var server = listener.Accept();
/// server.Send(server.Receive().ToUpperInvariant());
///
/// // In another:
/// using var client = Connection.Connect&lt;string&gt;("/tmp/app.sock", key);
/// client.Send("hello");
/// Console.WriteLine(client.Receive()); // HELLO
/// </code></example>
public static class Connection
{
    /// <summary>
    /// Connects to the <see cref="Listener{T}"/> at <paramref name="address"/> and proves it knows the key (Python:
    /// <c>Client(address, authkey=key)</c>); the listener proves it knows it too. Returns once both did: the listener's
    /// <see cref="Listener{T}.Accept"/> returns the other end, now or later.
    /// </summary>
    /// <param name="address">The listener's <see cref="Listener{T}.Address"/>: a Unix socket path, or host:port.</param>
    /// <param name="authKey">The listener's key; null when it has none.</param>
    /// <param name="options">The bound on connecting and the handshake, and on a message.</param>
    /// <exception cref="AuthenticationException">The keys differ (either side refused the other), or the peer is not a listener.</exception>
    /// <exception cref="TimeoutException">Connecting and the handshake took longer than <see cref="ConnectOptions.HandshakeTimeout"/>.</exception>
    /// <exception cref="MultiprocessingException">Nothing listens there.</exception>
    public static Connection<T> Connect<T>(string address, byte[]? authKey = null, ConnectOptions? options = null)
    {
        var (endpoint, key, checkedOptions) = Prepare(address, authKey, options);
        if (endpoint is DnsEndPoint) endpoint = ConnectionAddress.ResolveAsync(endpoint, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        return Open<T>(endpoint, address, key, checkedOptions);
    }

    /// <summary>As <see cref="Connect{T}(string, byte[], ConnectOptions)"/>, without blocking the calling thread.</summary>
    /// <exception cref="AuthenticationException">The keys differ (either side refused the other), or the peer is not a listener.</exception>
    /// <exception cref="TimeoutException">Connecting and the handshake took longer than <see cref="ConnectOptions.HandshakeTimeout"/>.</exception>
    /// <exception cref="MultiprocessingException">Nothing listens there.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the connection was made.</exception>
    public static async ValueTask<Connection<T>> ConnectAsync<T>(string address, byte[]? authKey = null, ConnectOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (endpoint, key, checkedOptions) = Prepare(address, authKey, options);
        endpoint = await ConnectionAddress.ResolveAsync(endpoint, cancellationToken).ConfigureAwait(false);
        // The handshake is a few fixed-size reads and writes, bounded by the timeout: it runs on a pool thread.
        return await Task.Run(() => Open<T>(endpoint, address, key, checkedOptions), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until at least one of <paramref name="objects"/> is ready, or <paramref name="timeout"/> passed, and returns
    /// the ready ones in the order given (an empty list when the time ran out), like Python's
    /// <c>multiprocessing.connection.wait(object_list, timeout)</c>.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Ready means that the next call will not wait: a <see cref="Connection{T}"/> has a message to receive, or its
    /// other end closed (<see cref="Connection{T}.Receive"/> then throws <see cref="EndOfStreamException"/>); a
    /// <see cref="ProcessQueue{T}"/> (or <see cref="JoinableProcessQueue{T}"/>) has an item, or was closed; a
    /// <see cref="WorkerProcess"/> has exited (Python's <c>sentinel</c>); a <see cref="Listener{T}"/> has a client to
    /// accept. Any mix of them, of any message types, may be given; the same object twice counts once.
    /// </para>
    /// <para>
    /// Nothing spins. A socket connection and a listener are awaited as events; a pipe end or a queue sleeps on its
    /// shared-memory futex word on a thread of its own for the time of the wait; a started process is awaited through
    /// its exit. Only <see cref="WorkerProcess.Parent"/> and <see cref="WorkerProcess.Current"/>, which this process
    /// did not start, are polled (every 100 ms).
    /// </para>
    /// </remarks>
    /// <param name="objects">Connections, queues, processes and listeners.</param>
    /// <param name="timeout">The longest wait; null waits until one is ready. <see cref="TimeSpan.Zero"/> only looks.</param>
    /// <exception cref="ArgumentException">An object is of another kind, or the list is empty and there is no timeout (it would wait forever).</exception>
    /// <exception cref="ObjectDisposedException">A connection or listener is closed.</exception>
    /// <exception cref="InvalidOperationException">A connection only sends, or a process was not started.</exception>
    public static IReadOnlyList<object> Wait(IEnumerable<object> objects, TimeSpan? timeout = null)
    {
        var (given, waitables) = Collect(objects, timeout);
        var deadline = Deadline.After(timeout ?? Timeout.InfiniteTimeSpan);
        var ready = ReadyNow(given, waitables);
        if (ready.Count > 0 || deadline.HasPassed) return ready;
        if (waitables.Count == 0)
        {
            Thread.Sleep(deadline.RemainingMilliseconds(int.MaxValue));
            return ready;
        }
        using var stop = new CancellationTokenSource();
        var tasks = Start(waitables, stop.Token);
        try
        {
            _ = Task.WaitAny(tasks, deadline.IsInfinite ? Timeout.Infinite : deadline.RemainingMilliseconds(int.MaxValue));
        }
        finally
        {
            stop.Cancel();
            Settle(tasks);
        }
        return Outcome(given, waitables, tasks);
    }

    /// <summary>As <see cref="Wait"/>, without blocking a thread while it waits.</summary>
    /// <param name="objects">Connections, queues, processes and listeners.</param>
    /// <param name="timeout">The longest wait; null waits until one is ready (or <paramref name="cancellationToken"/> is cancelled).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async ValueTask<IReadOnlyList<object>> WaitAsync(IEnumerable<object> objects, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var (given, waitables) = Collect(objects, timeout);
        var deadline = Deadline.After(timeout ?? Timeout.InfiniteTimeSpan);
        var ready = ReadyNow(given, waitables);
        if (ready.Count > 0 || deadline.HasPassed) return ready;
        cancellationToken.ThrowIfCancellationRequested();
        if (waitables.Count == 0)
        {
            await Task.Delay(deadline.RemainingMilliseconds(int.MaxValue), cancellationToken).ConfigureAwait(false);
            return ready;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = Start(waitables, stop.Token);
        try
        {
            var any = Task.WhenAny(tasks);
            if (deadline.IsInfinite) await any.WaitAsync(cancellationToken).ConfigureAwait(false);
            else await any.WaitAsync(TimeSpan.FromMilliseconds(deadline.RemainingMilliseconds(int.MaxValue)), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The time ran out: nothing is ready, unless something became ready just now (looked at below).
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Cancelled waits, and failures: an object whose wait failed counts as ready (using it reports the failure).
            }
        }
        return Outcome(given, waitables, tasks);
    }

    private static (EndPoint Endpoint, byte[] Key, ConnectOptions Options) Prepare(string address, byte[]? authKey, ConnectOptions? options)
    {
        options ??= new ConnectOptions();
        options.Validate();
        var key = ConnectionAddress.Key(authKey, nameof(authKey));
        return (ConnectionAddress.Parse(address, nameof(address)), key, options);
    }

    private static Connection<T> Open<T>(EndPoint endpoint, string address, byte[] key, ConnectOptions options)
    {
        var socket = ManagerEndpoints.NewSocket(endpoint);
        FrameChannel? channel = null;
        var done = false;
        try
        {
            using (var limit = new CancellationTokenSource(options.HandshakeTimeout))
            {
                try
                {
                    socket.ConnectAsync(endpoint, limit.Token).AsTask().GetAwaiter().GetResult();
                }
                catch (OperationCanceledException)
                {
                    throw new TimeoutException($"Connecting to the listener at {address} took longer than {Seconds(options.HandshakeTimeout)} s (ConnectOptions.HandshakeTimeout).");
                }
                catch (SocketException e)
                {
                    throw new MultiprocessingException($"Could not connect to a listener at {address}: {e.Message}. Is it listening, and is the address right?", e);
                }
            }
            channel = new FrameChannel(socket, options.MaxMessageBytes, bufferSize: 16 * 1024);
            var limitMs = (int)options.HandshakeTimeout.TotalMilliseconds;
            socket.ReceiveTimeout = limitMs;
            socket.SendTimeout = limitMs;
            try
            {
                ManagerAuth.Client(channel, key, Guid.NewGuid(), address, ManagerAuth.Realm.Listener);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                throw new TimeoutException(
                    $"The peer at {address} did not complete the auth handshake within {Seconds(options.HandshakeTimeout)} s (ConnectOptions.HandshakeTimeout): " +
                    "it is not a Multiprocessing listener, or it is stuck.", e);
            }
            catch (SocketException e)
            {
                throw new AuthenticationException($"The connection to the listener at {address} failed during the auth handshake ({e.Message}).", e);
            }
            socket.ReceiveTimeout = 0;
            socket.SendTimeout = 0;
            var connection = new Connection<T>(new SocketTransport<T>(channel, "listener at " + address));
            done = true;
            return connection;
        }
        finally
        {
            if (!done)
            {
                if (channel is not null) channel.Dispose();
                else socket.Dispose();
            }
        }
    }

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>The objects without repeats, each as what it waits through; refuses what cannot be waited on.</summary>
    private static (List<object> Given, List<IWaitable> Waitables) Collect(IEnumerable<object> objects, TimeSpan? timeout)
    {
        ArgumentNullException.ThrowIfNull(objects);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var given = new List<object>();
        var waitables = new List<IWaitable>();
        foreach (var item in objects)
        {
            if (item is null) throw new ArgumentException("The objects to wait on include a null.", nameof(objects));
            if (!seen.Add(item)) continue;
            if (item is not IWaitable waitable)
            {
                throw new ArgumentException(
                    $"Wait cannot wait on a {TravelErrors.Friendly(item.GetType())}: it waits on Connection<T> (a message, or the other end closed), " +
                    "ProcessQueue<T> (an item), WorkerProcess (its exit) and Listener<T> (a client to accept). " +
                    "For a Task, use Task.WhenAny; for the result of ApplyAsync, await it.", nameof(objects));
            }
            given.Add(item);
            waitables.Add(waitable);
        }
        if (given.Count == 0 && (timeout is null || timeout == Timeout.InfiniteTimeSpan))
            throw new ArgumentException("There is nothing to wait on, and no timeout: the wait would never end.", nameof(objects));
        return (given, waitables);
    }

    /// <summary>Those ready now (each asked once; this also checks that each can be waited on).</summary>
    private static List<object> ReadyNow(List<object> given, List<IWaitable> waitables)
    {
        var ready = new List<object>();
        for (var i = 0; i < waitables.Count; i++)
            if (waitables[i].IsReady) ready.Add(given[i]);
        return ready;
    }

    private static Task[] Start(List<IWaitable> waitables, CancellationToken token)
    {
        var tasks = new Task[waitables.Count];
        for (var i = 0; i < tasks.Length; i++)
        {
            try
            {
                tasks[i] = waitables[i].WhenReadyAsync(token);
            }
            catch (Exception e)
            {
                tasks[i] = Task.FromException(e);
            }
        }
        return tasks;
    }

    /// <summary>Waits for every cancelled wait to end (each ends promptly), so none still holds its object.</summary>
    private static void Settle(Task[] tasks)
    {
        try
        {
            Task.WaitAll(tasks);
        }
        catch (AggregateException)
        {
            // Cancelled waits, and failures: looked at in Outcome.
        }
    }

    /// <summary>Those whose wait completed or failed, and those ready by now (one may have become ready as the others were cancelled).</summary>
    private static List<object> Outcome(List<object> given, List<IWaitable> waitables, Task[] tasks)
    {
        var ready = new List<object>();
        for (var i = 0; i < tasks.Length; i++)
        {
            // A wait on a thread of its own ends cancelled as a fault carrying OperationCanceledException: that is not a failure.
            var task = tasks[i];
            if (task.Status == TaskStatus.RanToCompletion || (task.IsFaulted && task.Exception?.InnerException is not OperationCanceledException))
            {
                ready.Add(given[i]);
                continue;
            }
            bool now;
            try
            {
                now = waitables[i].IsReady;
            }
            catch (Exception)
            {
                now = true; // closed meanwhile: the next call on it says so
            }
            if (now) ready.Add(given[i]);
        }
        return ready;
    }
}
