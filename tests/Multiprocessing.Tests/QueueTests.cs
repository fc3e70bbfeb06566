using System.Diagnostics;

namespace Multiprocessing.Tests;

public class QueueTests
{
    private static void JoinAllAndCheck(params WorkerProcess[] workers)
    {
        foreach (var w in workers) TestSupport.JoinOrFail(w);
        foreach (var w in workers) Assert.True(w.Exception is null, $"{w.Name} failed: {w.Exception}");
    }

    private static void AssertNoShmLeft(string name) =>
        Assert.True(TestSupport.Eventually(() => !Directory.EnumerateFiles("/dev/shm", name + "*").Any(), TimeSpan.FromSeconds(5)),
            $"/dev/shm still holds blocks of {name}: {string.Join(", ", Directory.EnumerateFiles("/dev/shm", name + "*"))}");

    [Fact]
    public void Seed_example_four_workers_report_task_results_through_a_queue()
    {
        string name;
        using (var results = new ProcessQueue<(int TaskId, long Result)>())
        {
            name = results.Name;
            var workers = Enumerable.Range(1, 4).Select(taskId => new WorkerProcess(() =>
            {
                long sum = 0;
                for (var i = 1; i <= taskId * 1000; i++) sum += i;
                results.Put((taskId, sum));
            }) { Name = $"task-{taskId}" }).ToArray();
            foreach (var w in workers) w.Start();
            var got = new Dictionary<int, long>();
            for (var i = 0; i < 4; i++)
            {
                Assert.True(results.TryGet(out var r, TestSupport.Patience), "a result did not arrive");
                got.Add(r.TaskId, r.Result);
            }
            JoinAllAndCheck(workers);
            foreach (var taskId in Enumerable.Range(1, 4))
                Assert.Equal((long)taskId * 1000 * (taskId * 1000 + 1) / 2, got[taskId]);
            Assert.Equal(0, results.Count);
        }
        AssertNoShmLeft(name);
    }

    [Theory]
    [InlineData(64 * 1024)]
    [InlineData(4096)] // a ring this small spills often while both sides run
    public void Two_producers_times_100000_items_reach_two_consumers_none_lost_or_duplicated(int ringBytes)
    {
        const int perProducer = 100_000;
        using var queue = new ProcessQueue<int>(maxSize: 0, ringBytes: ringBytes);
        using var seen = SharedArray<int>.Create(2 * perProducer);
        var producers = Enumerable.Range(0, 2).Select(p => new WorkerProcess(() =>
        {
            for (var i = 0; i < perProducer; i++) queue.Put(p * perProducer + i);
        }) { Name = $"producer-{p}" }).ToArray();
        var consumers = Enumerable.Range(0, 2).Select(c => new WorkerProcess(() =>
        {
            var last = new[] { -1, -1 };
            while (true)
            {
                var item = queue.Get();
                if (item < 0) return;
                Interlocked.Increment(ref seen[item]);
                // Each producer's items arrive in the order it put them, whichever consumer takes them.
                var from = item / perProducer;
                if (item <= last[from]) throw new InvalidOperationException($"item {item} after {last[from]}");
                last[from] = item;
            }
        }) { Name = $"consumer-{c}" }).ToArray();
        foreach (var w in consumers.Concat(producers)) w.Start();
        JoinAllAndCheck(producers);
        queue.Put(-1);
        queue.Put(-1);
        JoinAllAndCheck(consumers);
        var span = seen.Span;
        Assert.Equal(-1, span.IndexOfAnyExcept(1)); // every item seen exactly once
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void A_bounded_queue_TryPut_times_out_when_full_and_succeeds_after_a_get()
    {
        using var queue = new ProcessQueue<string>(maxSize: 2);
        Assert.True(queue.TryPut("a", TimeSpan.Zero));
        queue.Put("b");
        var clock = Stopwatch.StartNew();
        Assert.False(queue.TryPut("c", TimeSpan.FromMilliseconds(150)));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(140), $"returned after {clock.Elapsed.TotalMilliseconds} ms");
        Assert.Equal(2, queue.Count);

        // A worker frees a slot: a waiting put completes.
        var taker = new WorkerProcess(() => { Thread.Sleep(100); if (queue.Get() != "a") throw new InvalidOperationException("order"); });
        taker.Start();
        Assert.True(queue.TryPut("c", TestSupport.Patience));
        JoinAllAndCheck(taker);
        Assert.Equal("b", queue.Get());
        Assert.Equal("c", queue.Get());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProcessQueue<int>(maxSize: -1));
    }

    [Fact]
    public void An_unbounded_queue_with_more_items_than_its_ring_holds_keeps_order_across_the_spill()
    {
        string name;
        using (var queue = new ProcessQueue<string>(ringBytes: 4096))
        {
            name = queue.Name;
            const int n = 20_000; // about 400 KB of items through a 4 KiB ring
            var producer = new WorkerProcess(() =>
            {
                for (var i = 0; i < n; i++) queue.Put($"item-{i:D8}");
                queue.Put(new string('x', 50_000)); // bigger than the ring itself
                queue.Put("last");
            });
            producer.Start();
            JoinAllAndCheck(producer); // everything is queued with no consumer: it spilled
            Assert.Equal(n + 2, queue.Count);
            for (var i = 0; i < n; i++)
            {
                Assert.True(queue.TryGet(out var item, TestSupport.Patience));
                Assert.Equal($"item-{i:D8}", item);
            }
            Assert.Equal(50_000, queue.Get().Length);
            Assert.Equal("last", queue.Get());
            // Back to the ring after the spill drained.
            queue.Put("again");
            Assert.Equal("again", queue.Get());
            Assert.False(queue.TryGet(out _, TimeSpan.FromMilliseconds(10)));
        }
        AssertNoShmLeft(name);
    }

    [Fact]
    public async Task Join_returns_only_after_every_TaskDone_and_one_too_many_throws()
    {
        using var tasks = new JoinableProcessQueue<int>();
        using var processed = SharedValue<int>.Create();
        for (var i = 0; i < 5; i++) tasks.Put(i);
        Assert.False(tasks.Join(TimeSpan.FromMilliseconds(50)));
        var worker = new WorkerProcess(() =>
        {
            for (var i = 0; i < 5; i++)
            {
                tasks.Get();
                Thread.Sleep(20);
                processed.Add(1);
                tasks.TaskDone();
            }
        });
        worker.Start();
        await tasks.JoinAsync().AsTask().WaitAsync(TestSupport.Patience);
        Assert.Equal(5, processed.Read());
        tasks.Join();
        JoinAllAndCheck(worker);
        Assert.Equal(0, tasks.UnfinishedTasks);
        Assert.Throws<InvalidOperationException>(tasks.TaskDone);
    }

    [Fact]
    public void Pipe_Poll_is_false_when_idle_and_true_when_a_message_waits()
    {
        var (left, right) = Pipe.Create<string>();
        using (left)
        using (right)
        {
            Assert.False(left.Poll());
            Assert.False(left.Poll(TimeSpan.FromMilliseconds(50)));
            var echo = new WorkerProcess(() =>
            {
                var message = right.Receive();
                right.Send(message + " back");
            });
            echo.Start();
            left.Send("ping");
            Assert.True(left.Poll(TestSupport.Patience));
            Assert.True(left.Poll());
            Assert.Equal("ping back", left.Receive());
            Assert.False(left.Poll());
            JoinAllAndCheck(echo);
        }
    }

    [Fact]
    public void Receive_throws_EndOfStreamException_after_the_other_end_closes()
    {
        var (reader, writer) = Pipe.Create<int[]>(duplex: false);
        using (reader)
        using (writer)
        {
            Assert.Throws<InvalidOperationException>(() => reader.Send([1]));
            var sender = new WorkerProcess(() =>
            {
                for (var i = 0; i < 3; i++) writer.Send([i, i * i]);
                writer.Close();
            });
            sender.Start();
            for (var i = 0; i < 3; i++) Assert.Equal([i, i * i], reader.Receive());
            Assert.Throws<EndOfStreamException>(() => reader.TryReceive(out _, TestSupport.Patience));
            Assert.True(reader.Poll()); // the end is waiting: Receive would not wait
            JoinAllAndCheck(sender);
        }

        // A sender process that exits without closing also ends the stream.
        var (r2, w2) = Pipe.Create<int>(duplex: false);
        using (r2)
        using (w2)
        {
            var quitter = new WorkerProcess(() => w2.Send(7));
            quitter.Start();
            JoinAllAndCheck(quitter);
            Assert.Equal(7, r2.Receive());
            Assert.Throws<EndOfStreamException>(() => r2.Receive());
        }
    }

    [Fact]
    public async Task Async_twins_send_and_receive_across_processes()
    {
        var (left, right) = Pipe.Create<long>();
        using var queue = new ProcessQueue<long>();
        using (left)
        using (right)
        {
            var worker = new WorkerProcess(() =>
            {
                for (var i = 0; i < 100; i++) right.Send(right.Receive() * 2);
                queue.Put(-1);
            });
            worker.Start();
            for (long i = 0; i < 100; i++)
            {
                await left.SendAsync(i);
                Assert.Equal(i * 2, await left.ReceiveAsync().AsTask().WaitAsync(TestSupport.Patience));
            }
            Assert.Equal(-1, await queue.GetAsync().AsTask().WaitAsync(TestSupport.Patience));
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await queue.GetAsync(cancel.Token));
            await queue.PutAsync(5);
            Assert.Equal(5, await queue.GetAsync());
            JoinAllAndCheck(worker);
        }
    }

    public sealed record Stamped(int Sequence, string Body, int Checksum);

    [Fact]
    public void A_producer_SIGKILLed_in_a_tight_put_loop_leaves_no_torn_item_and_the_queue_works_on()
    {
        string name;
        using (var queue = new ProcessQueue<Stamped>(ringBytes: 16 * 1024))
        using (var started = new ProcessEvent())
        {
            name = queue.Name;
            var producer = new WorkerProcess(() =>
            {
                started.Set();
                for (var i = 0; ; i++)
                {
                    var body = new string((char)('a' + i % 26), 10 + i % 300);
                    queue.Put(new Stamped(i, body, body.Length * 31 + i));
                }
            }) { Name = "doomed-producer" };
            producer.Start();
            Assert.True(started.Wait(TestSupport.Patience));
            // Consume while it produces, then kill it mid-stream (the ring is small: it is often inside Put, or spilling).
            var expected = 0;
            void TakeOne(Stamped s)
            {
                Assert.Equal(expected, s.Sequence);
                Assert.Equal(s.Body.Length * 31 + s.Sequence, s.Checksum);
                Assert.Equal(10 + s.Sequence % 300, s.Body.Length);
                expected++;
            }
            while (expected < 20_000) TakeOne(queue.Get());
            TestSupport.SigKill(producer.Pid);
            Assert.True(producer.Join(TestSupport.Patience));
            var told = false;
            try
            {
                while (queue.TryGet(out var s, TimeSpan.FromSeconds(5))) TakeOne(s);
            }
            catch (ProducerDiedException e)
            {
                told = true;
                Assert.Equal(producer.Pid, e.ProcessId);
            }
            Assert.True(told, "the consumer was not told that the only producer died");
            Assert.Equal(0, queue.Count);

            // The rest carry on: another process puts, this one gets.
            var next = new WorkerProcess(() => { for (var i = 0; i < 1000; i++) queue.Put(new Stamped(i, "after", i)); });
            next.Start();
            for (var i = 0; i < 1000; i++)
            {
                Assert.True(queue.TryGet(out var s, TestSupport.Patience));
                Assert.Equal(i, s.Sequence);
            }
            JoinAllAndCheck(next);
        }
        AssertNoShmLeft(name);
    }

    [Fact]
    public async Task A_consumer_waiting_with_a_timeout_on_a_queue_whose_only_producer_died_is_told()
    {
        using var queue = new ProcessQueue<int>();
        var producer = new WorkerProcess(() =>
        {
            queue.Put(1);
            Thread.Sleep(Timeout.Infinite);
        });
        producer.Start();
        Assert.True(queue.TryGet(out var first, TestSupport.Patience));
        Assert.Equal(1, first);
        var waiting = Task.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            var e = Assert.Throws<ProducerDiedException>(() => queue.TryGet(out _, TimeSpan.FromSeconds(30)));
            return (e, clock.Elapsed);
        });
        await Task.Delay(150);
        producer.Kill();
        var (error, elapsed) = await waiting.WaitAsync(TestSupport.Patience);
        Assert.Equal(producer.Pid, error.ProcessId);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"told only after {elapsed}");
        // Told once: the next wait just times out.
        Assert.False(queue.TryGet(out _, TimeSpan.FromMilliseconds(50)));
    }

    [Fact]
    public void Bad_arguments_and_unserializable_items_are_refused_with_a_reason()
    {
        var ring = Assert.Throws<ArgumentOutOfRangeException>(() => new ProcessQueue<int>(ringBytes: 100));
        Assert.Contains("4096", ring.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProcessQueue<int>(maxSize: -3));
        using (var ints = new ProcessQueue<int>())
            Assert.Throws<ArgumentOutOfRangeException>(() => ints.TryPut(1, TimeSpan.FromSeconds(-2)));
        using var queue = new ProcessQueue<Action>();
        var e = Assert.Throws<SerializationException>(() => queue.Put(() => { }));
        Assert.Contains("cannot be an item", e.Message);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void Close_makes_puts_throw_and_a_drained_get_throw()
    {
        using var queue = new ProcessQueue<int>();
        queue.Put(1);
        queue.Close();
        Assert.True(queue.IsClosed);
        Assert.Throws<InvalidOperationException>(() => queue.Put(2));
        Assert.Equal(1, queue.Get());
        Assert.Throws<InvalidOperationException>(() => queue.Get());
    }
}
