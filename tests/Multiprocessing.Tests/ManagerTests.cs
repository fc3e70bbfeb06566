using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.Extensions.Logging;

namespace Multiprocessing.Tests;

public interface ICounterService
{
    int Add(int amount);
    int Total { get; }
    string Describe(Point point);
    void Fail(string message);
    void FailOddly(int code);
}

public sealed class CounterService : ICounterService
{
    private int _total;

    public int Add(int amount) => _total += amount;
    public int Total => _total;
    public string Describe(Point point) => $"{point.Label}@{point.X} in pid {Environment.ProcessId}";
    public void Fail(string message) => throw new InvalidOperationException(message);
    public void FailOddly(int code) => throw new CustomErrorWithoutMessageConstructor(code);
}

public class ManagerTests
{
    private static readonly TimeSpan Patience = TestSupport.Patience;

    [Fact]
    public async Task Seed_four_workers_increment_under_a_manager_lock_and_with_the_atomic_update()
    {
        await using var manager = await Manager.StartAsync();
        var counter = manager.Value(0);
        var guard = manager.Lock();
        var atomic = manager.Value(0);
        var counts = manager.Dictionary<string, int>();

        var workers = Enumerable.Range(0, 4).Select(_ => new WorkerProcess(() =>
        {
            for (var i = 0; i < 1000; i++)
            {
                using (guard.Acquire()) counter.Value = counter.Value + 1;
                atomic.Update(x => x + 1);
                counts.AddOrUpdate("hits", 1, (_, n) => n + 1);
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(TestSupport.JoinOrFail);
        Assert.All(workers, w => Assert.Null(w.Exception));

        Assert.Equal(4000, counter.Value);
        Assert.Equal(4000, atomic.Value);
        Assert.Equal(4000, counts["hits"]);
        Assert.NotEqual(Environment.ProcessId, manager.ServerProcess!.Pid);
    }

    [Fact]
    public async Task Dictionary_proxy_behaves_like_Dictionary_for_a_random_operation_sequence()
    {
        await using var manager = Manager.Serve(new IPEndPoint(IPAddress.Loopback, 0), [1, 2, 3, 4]);
        IDictionary<int, string> proxy = manager.Dictionary<int, string>();
        IDictionary<int, string> model = new Dictionary<int, string>();
        var random = new Random(6);
        for (var step = 0; step < 3000; step++)
        {
            var key = random.Next(50);
            var value = "v" + random.Next(1000);
            switch (random.Next(11))
            {
                case 0: proxy[key] = value; model[key] = value; break;
                case 1: Same(() => { model.Add(key, value); return 0; }, () => { proxy.Add(key, value); return 0; }); break;
                case 2: Assert.Equal(model.Remove(key), proxy.Remove(key)); break;
                case 3: Assert.Equal(model.ContainsKey(key), proxy.ContainsKey(key)); break;
                case 4:
                    Assert.Equal(model.TryGetValue(key, out var a), proxy.TryGetValue(key, out var b));
                    Assert.Equal(a, b);
                    break;
                case 5: Same(() => model[key], () => proxy[key]); break;
                case 6: Assert.Equal(model.Count, proxy.Count); break;
                case 7:
                {
                    var pair = new KeyValuePair<int, string>(key, model.TryGetValue(key, out var v) && random.Next(2) == 0 ? v : value);
                    Assert.Equal(model.Contains(pair), proxy.Contains(pair));
                    Assert.Equal(model.Remove(pair), proxy.Remove(pair));
                    break;
                }
                case 8: Assert.Equal(model.Keys.Order(), proxy.Keys.Order()); break;
                case 9: Assert.Equal(model.OrderBy(p => p.Key), proxy.OrderBy(p => p.Key)); break;
                case 10:
                    if (random.Next(40) == 0) { model.Clear(); proxy.Clear(); }
                    break;
            }
        }
        Assert.Equal(model.OrderBy(p => p.Key), proxy.OrderBy(p => p.Key));
        Assert.Equal(model.Values.Order(), proxy.Values.Order());
    }

    [Fact]
    public async Task List_proxy_behaves_like_List_for_a_random_operation_sequence()
    {
        await using var manager = Manager.Serve(new IPEndPoint(IPAddress.Loopback, 0), [5, 6, 7]);
        IList<int> proxy = manager.List<int>();
        IList<int> model = new List<int>();
        var random = new Random(7);
        for (var step = 0; step < 3000; step++)
        {
            var value = random.Next(30);
            // Indexes a little outside the list too, to compare the exceptions.
            var index = random.Next(-1, model.Count + 2);
            switch (random.Next(10))
            {
                case 0: case 1: model.Add(value); proxy.Add(value); break;
                case 2: Same(() => { model.Insert(index, value); return 0; }, () => { proxy.Insert(index, value); return 0; }); break;
                case 3: Same(() => { model.RemoveAt(index); return 0; }, () => { proxy.RemoveAt(index); return 0; }); break;
                case 4: Same(() => model[index], () => proxy[index]); break;
                case 5: Same(() => { model[index] = value; return 0; }, () => { proxy[index] = value; return 0; }); break;
                case 6: Assert.Equal(model.IndexOf(value), proxy.IndexOf(value)); break;
                case 7: Assert.Equal(model.Contains(value), proxy.Contains(value)); Assert.Equal(model.Remove(value), proxy.Remove(value)); break;
                case 8: Assert.Equal(model.Count, proxy.Count); break;
                case 9:
                    if (random.Next(50) == 0) { model.Clear(); proxy.Clear(); }
                    Assert.Equal(model, proxy.ToList());
                    break;
            }
        }
        var copy = new int[model.Count + 1];
        proxy.CopyTo(copy, 1);
        Assert.Equal(model, copy.Skip(1));
    }

    /// <summary>Runs the same operation on the model and the proxy: same result, or the same exception type.</summary>
    private static void Same<T>(Func<T> model, Func<T> proxy)
    {
        Exception? expected = null;
        T? want = default;
        try { want = model(); } catch (Exception e) { expected = e; }
        if (expected is null) Assert.Equal(want, proxy());
        else Assert.Throws(expected.GetType(), () => proxy());
    }

    [Fact]
    public async Task Registered_type_is_served_and_its_exceptions_come_home()
    {
        await using var manager = await Manager.StartAsync();
        var service = manager.Register<ICounterService, CounterService>("counter");
        Assert.Equal(5, service.Add(5));
        Assert.Contains($"pid {manager.ServerProcess!.Pid}", service.Describe(new Point(3, "p")));

        var e = Assert.Throws<InvalidOperationException>(() => service.Fail("no good"));
        Assert.Equal("no good", e.Message);
        Assert.Contains(nameof(CounterService.Fail), e.StackTrace);
        var odd = Assert.Throws<RemoteException>(() => service.FailOddly(7));
        Assert.Contains("custom failure 7", odd.Message);

        // A worker reaches the same instance, through the interface captured by its lambda, and by name.
        var worker = new WorkerProcess(() => service.Add(10));
        worker.Start();
        TestSupport.JoinOrFail(worker);
        Assert.Null(worker.Exception);
        Assert.Equal(15, manager.Register<ICounterService, CounterService>("counter").Total);

        Assert.Throws<ArgumentException>(() => manager.Register<CounterService, CounterService>("not-an-interface"));
    }

    [Fact]
    public async Task Nested_proxies_namespace_queue_and_memoize_work_across_processes()
    {
        await using var manager = await Manager.StartAsync();
        var groups = manager.Dictionary<string, IList<int>>();
        groups["a"] = manager.List<int>();
        groups["a"].Add(1);
        dynamic ns = manager.Namespace();
        ns.Label = "start";
        ns.Limit = 3;
        var queue = manager.Queue<Point>(maxSize: 10);
        var calls = manager.List<int>();
        var square = manager.Memoize<int, int>(x => { calls.Add(x); return x * x; }, maxEntries: 100);
        Assert.Equal(9, square(3));
        NamespaceProxy bag = ns;

        var worker = new WorkerProcess(() =>
        {
            groups["a"].Add(2);
            groups["b"] = new List<int> { 7 }; // a plain list travels by value
            bag.Set("Label", bag.Get<string>("Label") + "+worker");
            for (var i = 0; i < 50; i++) queue.Put(new Point(i, "q"));
            _ = square(3);
            _ = square(4);
        });
        worker.Start();
        var received = new List<Point>();
        for (var i = 0; i < 50; i++)
        {
            Assert.True(queue.TryGet(out var item, Patience));
            received.Add(item);
        }
        TestSupport.JoinOrFail(worker);
        Assert.Null(worker.Exception);

        Assert.Equal([1, 2], groups["a"].ToList());
        Assert.Equal([7], groups["b"].ToList());
        Assert.Equal("start+worker", (string)ns.Label);
        Assert.Equal(3, (int)ns.Limit);
        Assert.Equal(Enumerable.Range(0, 50), received.Select(p => p.X));
        Assert.False(queue.TryGet(out _, TimeSpan.FromMilliseconds(50)));
        Assert.Equal([3, 4], calls.ToList()); // 3 came from the cache in the worker
        Assert.Equal(16, square(4));
        Assert.Equal([3, 4], calls.ToList());
    }

    [Fact]
    public async Task Remote_clients_connect_with_the_right_key_and_are_refused_with_a_wrong_one()
    {
        var log = new ListLogger();
        var key = "correct horse battery staple"u8.ToArray();
        await using var served = Manager.Serve(new IPEndPoint(IPAddress.Loopback, 0), key, new ManagerOptions { Logger = log });
        var scores = served.Dictionary<string, int>("scores");
        scores["alice"] = 3;

        await using (var client = await Manager.ConnectAsync(served.Endpoint, key))
        {
            var remote = client.Dictionary<string, int>("scores");
            Assert.Equal(3, remote["alice"]);
            remote.AddOrUpdate("alice", 0, (_, v) => v * 10);
        }
        Assert.Equal(30, scores["alice"]);

        await Assert.ThrowsAsync<AuthenticationException>(() => Manager.ConnectAsync(served.Endpoint, "wrong"u8.ToArray()));
        Assert.True(TestSupport.Eventually(() => log.Messages.Any(m => m.Contains("auth key")), Patience));
        Assert.Throws<ArgumentException>(() => Manager.Serve(new IPEndPoint(IPAddress.Any, 0), key));
        Assert.Equal(30, scores["alice"]);
    }

    [Fact]
    public async Task Silent_and_garbage_peers_cannot_lock_out_a_client_with_the_key_and_a_full_manager_says_so()
    {
        var key = Guid.NewGuid().ToByteArray();
        await using var served = Manager.Serve(new IPEndPoint(IPAddress.Loopback, 0), key, new ManagerOptions { MaxConnections = 100 });
        var port = ((IPEndPoint)served.Endpoint).Port;
        served.Dictionary<string, int>("d")["x"] = 7;

        // 200 peers connect and say nothing, 50 more send garbage: once, they held every slot for 10 s and a
        // client with the key was turned away as "not a Multiprocessing manager".
        var peers = new List<Socket>();
        try
        {
            for (var i = 0; i < 250; i++)
            {
                var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                peer.Connect(IPAddress.Loopback, port);
                if (i >= 200) peer.Send(System.Text.Encoding.ASCII.GetBytes(new string('x', 80)));
                peers.Add(peer);
            }
            await using (var client = await Manager.ConnectAsync(served.Endpoint, key).WaitAsync(Patience))
                Assert.Equal(7, client.Dictionary<string, int>("d")["x"]);
        }
        finally
        {
            foreach (var peer in peers) peer.Dispose();
        }

        // Every authenticated slot taken: the next client hears why.
        await using var small = Manager.Serve(new IPEndPoint(IPAddress.Loopback, 0), key, new ManagerOptions { MaxConnections = 1 });
        await using var first = await Manager.ConnectAsync(small.Endpoint, key);
        _ = first.Dictionary<string, int>("d").Count; // holds the one connection
        var refused = await Assert.ThrowsAsync<MultiprocessingException>(() => Manager.ConnectAsync(small.Endpoint, key).WaitAsync(Patience));
        Assert.Contains("already serves its maximum of clients (ManagerOptions.MaxConnections", refused.Message);
    }

    [Fact]
    public async Task Ten_thousand_malformed_frames_close_only_their_connections_while_a_good_client_works()
    {
        var log = new ListLogger();
        var key = Guid.NewGuid().ToByteArray();
        await using var served = Manager.Serve(new IPEndPoint(IPAddress.Loopback, 0), key,
            new ManagerOptions { Logger = log, MaxFrameBytes = 1 << 20, HandshakeTimeout = TimeSpan.FromSeconds(5) });
        var endpoint = (IPEndPoint)served.Endpoint;
        var good = served.Dictionary<int, int>("good");

        using var stop = new CancellationTokenSource();
        var goodOps = 0;
        var goodClient = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                good[goodOps % 100] = goodOps;
                Assert.Equal(goodOps, good[goodOps % 100]);
                goodOps++;
            }
        });

        const int Frames = 10_000;
        var sent = 0;
        var watch = Stopwatch.StartNew();
        await Parallel.ForAsync(0, Frames, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) =>
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(120)) return;
            await Task.Run(() => SendGarbage(endpoint, key, new Random(i), i % 5), ct);
            Interlocked.Increment(ref sent);
        });
        stop.Cancel();
        await goodClient.WaitAsync(Patience);

        Assert.Equal(Frames, sent);
        Assert.True(goodOps > 0);
        // The server still serves new clients and kept every good write.
        await using var after = await Manager.ConnectAsync(endpoint, key);
        var seenByNewClient = after.Dictionary<int, int>("good");
        Assert.Equal(Math.Min(goodOps, 100), seenByNewClient.Count);
        Assert.Equal(goodOps - 1, seenByNewClient[(goodOps - 1) % 100]);
        Assert.Contains(log.Messages, m => m.Contains("malformed request"));
        Assert.Contains(log.Messages, m => m.Contains("refused a connection"));
    }

    /// <summary>One hostile connection: garbage instead of the handshake, or a bad frame after a good one.</summary>
    private static void SendGarbage(IPEndPoint endpoint, byte[] key, Random random, int kind)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Connect(endpoint);
        socket.ReceiveTimeout = 10_000;
        var connection = new WireConnection(socket);
        byte[] payload;
        if (kind == 0)
        {
            // Not a client at all: random bytes where the handshake answer belongs.
            payload = new byte[random.Next(0, ManagerAuth.ClientMessageLength * 2)];
            random.NextBytes(payload);
            connection.TryReadExactly(40, out _);
            Send(socket, payload);
        }
        else
        {
            ManagerAuth.Client(connection, key, Guid.NewGuid(), endpoint.ToString());
            var body = new byte[random.Next(1, 300)];
            random.NextBytes(body);
            var frame = new byte[4 + body.Length];
            body.CopyTo(frame, 4);
            switch (kind)
            {
                case 1: BinaryPrimitives.WriteInt32LittleEndian(frame, body.Length); break;                     // well framed, random content
                case 2: BinaryPrimitives.WriteInt32LittleEndian(frame, body.Length + random.Next(1, 1000)); break; // truncated
                case 3: BinaryPrimitives.WriteInt32LittleEndian(frame, random.Next(2 << 20, int.MaxValue)); break;  // oversized
                default: BinaryPrimitives.WriteInt32LittleEndian(frame, -random.Next(1, int.MaxValue)); break;      // negative
            }
            Send(socket, frame);
        }
        socket.Shutdown(SocketShutdown.Send);
        // Wait for the server to close (or answer an accidental valid request), so the storm is real load.
        var sink = new byte[4096];
        try { while (socket.Receive(sink) > 0) { } } catch (SocketException) { }
    }

    private static void Send(Socket socket, byte[] data)
    {
        try { socket.Send(data); } catch (SocketException) { }
    }

    [Fact]
    public async Task A_lock_held_by_a_process_that_dies_goes_to_the_next_acquirer_who_is_told()
    {
        await using var manager = await Manager.StartAsync();
        var guard = manager.Lock();
        var held = manager.Queue<int>();
        var holder = new WorkerProcess(() =>
        {
            guard.Acquire();
            held.Put(Environment.ProcessId);
            Thread.Sleep(Timeout.Infinite);
        });
        holder.Start();
        Assert.True(held.TryGet(out _, Patience));
        Assert.False(guard.TryAcquire(TimeSpan.FromMilliseconds(100)));
        holder.Kill();
        TestSupport.JoinOrFail(holder);
        var abandoned = Assert.Throws<AbandonedLockException>(() => guard.TryAcquire(Patience));
        Assert.Contains("went away", abandoned.Message);
        // The caller holds it now; it is told once, and the lock works as before.
        Assert.False(guard.TryAcquire(TimeSpan.FromMilliseconds(50)));
        guard.Release();
        Assert.True(guard.TryAcquire(Patience));
        guard.Release();
    }

    [Fact]
    public async Task Code_written_against_IProcessLock_takes_a_shared_memory_lock_or_a_managers()
    {
        await using var manager = await Manager.StartAsync();
        using var local = new ProcessLock();
        foreach (var gate in new IProcessLock[] { local, manager.Lock() })
        {
            using (gate.Acquire()) Assert.False(gate.TryAcquire());
            Assert.True(gate.TryAcquire(TimeSpan.FromSeconds(5)));
            Assert.False(await gate.TryAcquireAsync(TimeSpan.FromMilliseconds(30)));
            gate.Release();
            using (await gate.AcquireAsync()) Assert.False(gate.TryAcquire(TimeSpan.Zero));
            Assert.True(await gate.TryAcquireAsync(TimeSpan.FromSeconds(5)));
            gate.Release();
            Assert.Throws<SynchronizationLockException>(gate.Release);
        }
    }

    [Fact]
    public async Task ReadSpin_is_an_option_and_a_manager_that_never_polls_still_answers()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Manager.Serve(new IPEndPoint(IPAddress.Loopback, 0), [1, 2, 3], new ManagerOptions { ReadSpin = TimeSpan.FromSeconds(-1) }));
        await using var manager = await Manager.StartAsync(new ManagerOptions { ReadSpin = TimeSpan.Zero });
        var counter = manager.Value(0);
        for (var i = 0; i < 100; i++) counter.Update(v => v + 1);
        Assert.Equal(100, counter.Value);
    }

    [Fact]
    public async Task A_managers_event_and_bounded_semaphore_work_across_processes()
    {
        await using var manager = await Manager.StartAsync();
        var go = manager.Event();
        var slots = manager.BoundedSemaphore(2);
        var inside = manager.Value(0);
        var most = manager.Value(0);
        var workers = Enumerable.Range(0, 4).Select(_ => new WorkerProcess(() =>
        {
            go.Wait();
            using (slots.Acquire())
            {
                var now = inside.Update(v => v + 1);
                most.Update(m => Math.Max(m, now));
                Thread.Sleep(150);
                inside.Update(v => v - 1);
            }
        })).ToList();
        foreach (var w in workers) w.Start();
        Assert.False(go.Wait(TimeSpan.FromMilliseconds(100)));
        go.Set();
        foreach (var w in workers) TestSupport.JoinOrFail(w);
        Assert.All(workers, w => Assert.Equal(0, w.ExitCode));
        Assert.InRange(most.Value, 1, 2); // never more than the semaphore's two at once
        Assert.Equal(2, slots.CurrentCount);
        var full = Assert.Throws<SemaphoreFullException>(() => slots.Release());
        Assert.Contains("past its maximum of 2", full.Message);
    }

    [Fact]
    public async Task Code_written_against_IProcessEvent_and_IProcessSemaphore_takes_either_kind()
    {
        await using var manager = await Manager.StartAsync();
        using var localEvent = new ProcessEvent();
        foreach (var e in new IProcessEvent[] { localEvent, manager.Event() })
        {
            Assert.False(await e.WaitAsync(TimeSpan.FromMilliseconds(30)));
            e.Set();
            Assert.True(e.IsSet);
            await e.WaitAsync();
            Assert.True(e.Wait(TimeSpan.Zero));
            e.Clear();
            Assert.False(e.IsSet);
        }
        using var localSemaphore = new ProcessSemaphore(1);
        foreach (var s in new IProcessSemaphore[] { localSemaphore, manager.Semaphore(1) })
        {
            using (await s.AcquireAsync()) Assert.False(s.TryAcquire());
            Assert.True(await s.TryAcquireAsync(TimeSpan.FromSeconds(5)));
            Assert.False(s.TryAcquire(TimeSpan.FromMilliseconds(30)));
            Assert.Equal(0, s.Release());
            Assert.Equal(1, s.CurrentCount);
            Assert.Null(s.MaximumCount);
        }
    }

    [Fact]
    public async Task A_managers_RLock_is_reentrant_for_its_holder_and_kept_from_other_processes()
    {
        await using var manager = await Manager.StartAsync();
        var guard = manager.RLock();
        var outer = guard.Acquire();
        using (guard.Acquire()) Assert.True(guard.TryAcquire()); // the holder may take it again, twice
        guard.Release();

        using var answers = new ProcessQueue<string>();
        var other = new WorkerProcess(() =>
        {
            answers.Put(guard.TryAcquire(TimeSpan.FromMilliseconds(100)) ? "took it while held" : "kept out");
            try { guard.Release(); answers.Put("released another's lock"); }
            catch (SynchronizationLockException) { answers.Put("refused to release"); }
            answers.Put(guard.TryAcquire(TestSupport.Patience) ? "took it once free" : "never got it");
            guard.Release();
        });
        other.Start();
        Assert.True(answers.TryGet(out var first, TestSupport.Patience));
        Assert.Equal("kept out", first);
        Assert.True(answers.TryGet(out var second, TestSupport.Patience));
        Assert.Equal("refused to release", second);
        outer.Dispose(); // the last of this thread's holds
        Assert.True(answers.TryGet(out var third, TestSupport.Patience));
        Assert.Equal("took it once free", third);
        TestSupport.JoinOrFail(other);
        Assert.Equal(0, other.ExitCode);
        IProcessLock asInterface = guard;
        Assert.True(asInterface.TryAcquire(TimeSpan.FromSeconds(5)));
        asInterface.Release();
    }

    [Fact]
    public async Task A_managers_condition_hands_items_from_a_producer_process_to_waiting_consumer_processes()
    {
        await using var manager = await Manager.StartAsync();
        var condition = manager.Condition();
        var stock = manager.Value(0);
        var taken = manager.List<int>();
        // Three consumers wait on the condition for stock; one producer adds 6 items, notifying one waiter each.
        var consumers = Enumerable.Range(0, 3).Select(id => new WorkerProcess(() =>
        {
            for (var i = 0; i < 2; i++)
            {
                using (condition.Acquire())
                {
                    Assert.True(condition.WaitFor(() => stock.Value > 0, TimeSpan.FromSeconds(30)));
                    stock.Value--;
                    taken.Add(id);
                }
            }
        })).ToList();
        foreach (var c in consumers) c.Start();
        var producer = new WorkerProcess(() =>
        {
            for (var i = 0; i < 6; i++)
            {
                Thread.Sleep(20);
                using (condition.Acquire())
                {
                    stock.Value++;
                    condition.Notify();
                }
            }
        });
        producer.Start();
        foreach (var w in consumers.Append(producer)) TestSupport.JoinOrFail(w);
        Assert.All(consumers.Append(producer), w => Assert.Equal(0, w.ExitCode));
        Assert.Equal([0, 0, 1, 1, 2, 2], taken.Order());
        Assert.Equal(0, stock.Value);

        // Waiting without the lock is refused in the caller's terms; a timed wait ends holding the lock.
        var refused = Assert.Throws<SynchronizationLockException>(() => condition.Wait(TimeSpan.FromMilliseconds(10)));
        Assert.Contains("without holding its lock", refused.Message);
        using (condition.Acquire())
        {
            Assert.False(condition.Wait(TimeSpan.FromMilliseconds(50)));
            Assert.False(await condition.WaitAsync(TimeSpan.FromMilliseconds(50)));
            condition.NotifyAll(); // held again after the waits: notifying is allowed
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        using (await condition.AcquireAsync())
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => condition.WaitAsync(cts.Token).AsTask());
        Assert.True(condition.TryAcquire(TimeSpan.FromSeconds(5))); // the cancelled wait left the lock released by its scope
        condition.Release();
    }

    [Fact]
    public async Task A_managers_barrier_releases_its_parties_together_and_breaks_when_one_gives_up()
    {
        await using var manager = await Manager.StartAsync();
        var barrier = manager.Barrier(3);
        var indexes = manager.List<int>();
        var after = manager.Value(0);
        var parties = Enumerable.Range(0, 2).Select(_ => new WorkerProcess(() =>
        {
            for (var round = 0; round < 3; round++)
            {
                indexes.Add(barrier.SignalAndWait());
                after.Update(v => v + 1);
            }
        })).ToList();
        foreach (var p in parties) p.Start();
        for (var round = 0; round < 3; round++)
        {
            Assert.True(SpinWait.SpinUntil(() => barrier.ParticipantsWaiting == 2, TestSupport.Patience));
            Assert.Equal(round * 2, after.Value); // nobody passed this round before the third party came
            indexes.Add(await barrier.SignalAndWaitAsync());
            Assert.True(SpinWait.SpinUntil(() => after.Value == (round + 1) * 2, TestSupport.Patience));
        }
        foreach (var p in parties) TestSupport.JoinOrFail(p);
        Assert.All(parties, p => Assert.Equal(0, p.ExitCode));
        Assert.Equal([0, 0, 0, 1, 1, 1, 2, 2, 2], indexes.Order());
        Assert.Equal(3, barrier.Parties);

        // A party that times out breaks the barrier for the one waiting, as in Python; Reset makes it usable again.
        var waiter = new WorkerProcess(() => Assert.Throws<BrokenBarrierException>(() => barrier.SignalAndWait()));
        waiter.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.ParticipantsWaiting == 1, TestSupport.Patience));
        Assert.False(barrier.SignalAndWait(TimeSpan.FromMilliseconds(100)));
        TestSupport.JoinOrFail(waiter);
        Assert.Equal(0, waiter.ExitCode);
        Assert.True(barrier.IsBroken);
        Assert.Throws<BrokenBarrierException>(() => barrier.SignalAndWait());
        barrier.Reset();
        Assert.False(barrier.IsBroken);

        // A party whose process dies while waiting breaks it too, instead of leaving the others waiting for ever.
        var doomed = new WorkerProcess(() => barrier.SignalAndWait());
        doomed.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.ParticipantsWaiting == 1, TestSupport.Patience));
        doomed.Kill();
        TestSupport.JoinOrFail(doomed);
        Assert.True(SpinWait.SpinUntil(() => barrier.IsBroken, TestSupport.Patience));
    }

    [Fact]
    public async Task A_managers_array_and_joinable_queue_work_across_processes()
    {
        await using var manager = await Manager.StartAsync();
        var squares = manager.Array<long>(8);
        var names = manager.Array(["a", "b", "c"]);
        var jobs = manager.JoinableQueue<int>();
        var workers = Enumerable.Range(0, 2).Select(_ => new WorkerProcess(() =>
        {
            while (true)
            {
                var i = jobs.Get();
                if (i < 0) { jobs.TaskDone(); return; }
                squares[i] = (long)i * i;
                jobs.TaskDone();
            }
        })).ToList();
        foreach (var w in workers) w.Start();
        for (var i = 0; i < 8; i++) jobs.Put(i);
        Assert.True(jobs.Join(TestSupport.Patience)); // every item marked done
        Assert.Equal(0, jobs.UnfinishedTasks);
        Assert.Equal([0L, 1, 4, 9, 16, 25, 36, 49], squares.ToArray());
        jobs.Put(-1);
        jobs.Put(-1);
        await jobs.JoinAsync().AsTask().WaitAsync(TestSupport.Patience);
        foreach (var w in workers) TestSupport.JoinOrFail(w);

        Assert.Equal(8, squares.Length);
        Assert.Equal(["a", "b", "c"], names);
        names[1] = "B";
        Assert.Equal("B", names[1]);
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => squares[8]);
        Assert.Contains("the manager's array has 8 items, 0 to 7", outside.Message);
        var extra = Assert.Throws<InvalidOperationException>(() => jobs.TaskDone());
        Assert.Contains("more times than items were put", extra.Message);
        // The same name gives the same array to another client.
        var shared = manager.Array<int>(2, "pair");
        shared[0] = 5;
        Assert.Equal(5, manager.Array<int>(2, "pair")[0]);
    }

    [Fact]
    public async Task Code_written_against_IProcessCondition_and_IProcessBarrier_takes_either_kind()
    {
        await using var manager = await Manager.StartAsync();
        using var localCondition = new ProcessCondition();
        foreach (var c in new IProcessCondition[] { localCondition, manager.Condition() })
        {
            using (c.Acquire())
            {
                Assert.False(c.Wait(TimeSpan.FromMilliseconds(20)));
                Assert.False(c.WaitFor(() => false, TimeSpan.FromMilliseconds(20)));
                c.Notify();
            }
        }
        using var localBarrier = new ProcessBarrier(1);
        foreach (var b in new IProcessBarrier[] { localBarrier, manager.Barrier(1) })
        {
            Assert.Equal(0, b.SignalAndWait());
            Assert.True(b.SignalAndWait(TimeSpan.FromSeconds(5)));
            Assert.Equal(0, await b.SignalAndWaitAsync());
            b.Abort();
            Assert.True(b.IsBroken);
            b.Reset();
            Assert.False(b.IsBroken);
        }
    }

    [Fact]
    public async Task Manager_proxies_held_as_the_shared_interfaces_travel_to_workers()
    {
        await using var manager = await Manager.StartAsync();
        IProcessLock guard = manager.Lock();
        IProcessLock reentrant = manager.RLock();
        IProcessEvent done = manager.Event();
        IProcessSemaphore slots = manager.Semaphore(1);
        IProcessCondition condition = manager.Condition();
        IProcessBarrier barrier = manager.Barrier(1);
        var worker = new WorkerProcess(() =>
        {
            using (guard.Acquire())
            using (reentrant.Acquire())
            using (slots.Acquire())
            using (condition.Acquire())
                condition.NotifyAll();
            barrier.SignalAndWait();
            done.Set();
        });
        worker.Start();
        TestSupport.JoinOrFail(worker);
        Assert.Equal(0, worker.ExitCode);
        Assert.True(done.IsSet);
        Assert.True(guard.TryAcquire()); // released by the worker
        guard.Release();
        // Stored in the manager under the interface, a proxy comes back as a proxy of the same object.
        var locks = manager.Dictionary<string, IProcessLock>();
        locks["guard"] = guard;
        Assert.True(locks["guard"].TryAcquire());
        Assert.False(guard.TryAcquire());
        guard.Release();
    }

    [Fact]
    public async Task Bad_input_gets_clear_exceptions()
    {
        await using var manager = await Manager.StartAsync();
        var d = manager.Dictionary<string, int>("shared");
        var e = Assert.Throws<KeyNotFoundException>(() => d["missing"]);
        Assert.Contains("missing", e.Message);
        Assert.Throws<InvalidOperationException>(() => manager.List<int>("shared"));
        Assert.Throws<SynchronizationLockException>(() => manager.Lock().Release());
        using var stream = new MemoryStream();
        Assert.Throws<SerializationException>(() => manager.Value(0).Update(x => x + (int)stream.Length));
        Assert.Throws<ArgumentException>(() => manager.Dictionary<string, int>("").Count);
        await manager.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => manager.List<int>());
        Assert.Throws<ObjectDisposedException>(() => d.Count);
    }

    private sealed class ListLogger : ILogger
    {
        private readonly ConcurrentQueue<string> _messages = new();
        public IEnumerable<string> Messages => _messages;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _messages.Enqueue(formatter(state, exception));
    }
}
