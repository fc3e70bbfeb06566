namespace Multiprocessing.Tests;

public class SynchronizeTests
{
    /// <summary>Runs on a new thread (not a pool thread: lock ownership is per thread) and waits, bounded.</summary>
    private static T OnOtherThread<T>(Func<T> body)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() => { try { result = body(); } catch (Exception e) { error = e; } }) { IsBackground = true };
        thread.Start();
        Assert.True(thread.Join(TestSupport.Patience), "the other thread did not finish");
        if (error is not null) throw error;
        return result;
    }

    private static void StartAll(IEnumerable<WorkerProcess> workers)
    {
        foreach (var w in workers) w.Start();
    }

    private static void JoinAllAndCheck(IEnumerable<WorkerProcess> workers)
    {
        foreach (var w in workers) TestSupport.JoinOrFail(w);
        foreach (var w in workers) Assert.True(w.Exception is null, $"{w.Name} failed: {w.Exception}");
    }

    [Fact]
    public void Four_processes_times_ten_thousand_unlocked_increments_under_a_ProcessLock_add_up()
    {
        using var gate = new ProcessLock();
        using var total = SharedValue<long>.Create();
        var workers = Enumerable.Range(0, 4).Select(_ => new WorkerProcess(() =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                using (gate.Acquire())
                {
                    // Read, then write: not atomic, so only the lock keeps the count right.
                    var seen = total.Value;
                    total.Value = seen + 1;
                }
            }
        })).ToList();
        StartAll(workers);
        JoinAllAndCheck(workers);
        Assert.Equal(40_000, total.Value);
        Assert.False(gate.IsLocked);
    }

    [Fact]
    public void Event_wait_times_out_false_and_is_true_when_another_process_sets_it()
    {
        using var ready = new ProcessEvent();
        var started = DateTime.UtcNow;
        Assert.False(ready.Wait(TimeSpan.FromMilliseconds(150)));
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(140));

        var setter = new WorkerProcess(() => { Thread.Sleep(200); ready.Set(); });
        setter.Start();
        Assert.True(ready.Wait(TestSupport.Patience), "the event set by another process was not seen");
        Assert.True(ready.IsSet);
        JoinAllAndCheck([setter]);
        ready.Clear();
        Assert.False(ready.Wait(TimeSpan.Zero));
    }

    [Fact]
    public void A_semaphore_caps_how_many_processes_are_inside_at_once()
    {
        using var slots = new ProcessSemaphore(2);
        using var go = new ProcessEvent();
        using var inside = SharedValue<int>.Create();
        using var most = SharedValue<int>.Create();
        var workers = Enumerable.Range(0, 5).Select(_ => new WorkerProcess(() =>
        {
            go.Wait();
            for (var round = 0; round < 3; round++)
            {
                using (slots.Acquire())
                {
                    var now = inside.Add(1);
                    int seen;
                    while ((seen = most.Read()) < now && most.CompareExchange(now, seen) != seen) { }
                    Thread.Sleep(30);
                    inside.Add(-1);
                }
            }
        })).ToList();
        StartAll(workers);
        go.Set();
        JoinAllAndCheck(workers);
        Assert.Equal(2, most.Read());
        Assert.Equal(0, inside.Read());
        Assert.Equal(2, slots.CurrentCount);
    }

    [Fact]
    public void A_bounded_semaphore_refuses_to_be_released_past_its_maximum()
    {
        using var s = new ProcessSemaphore(1, 2);
        Assert.Equal(1, s.Release());
        var e = Assert.Throws<SemaphoreFullException>(() => s.Release());
        Assert.Contains("maximum of 2", e.Message);
        Assert.True(s.TryAcquire());
        Assert.True(s.TryAcquire(TimeSpan.Zero));
        Assert.False(s.TryAcquire(TimeSpan.FromMilliseconds(50)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProcessSemaphore(3, 2));
    }

    [Fact]
    public void A_barrier_of_three_processes_releases_them_together()
    {
        using var barrier = new ProcessBarrier(3);
        using var arrived = SharedValue<int>.Create();
        using var seenAfter = SharedArray<int>.Create(3);
        using var indices = SharedArray<int>.Create(3);
        var workers = Enumerable.Range(0, 3).Select(i => new WorkerProcess(() =>
        {
            Thread.Sleep(50 * i);
            arrived.Add(1);
            indices[i] = barrier.SignalAndWait();
            seenAfter[i] = arrived.Read();
        })).ToList();
        StartAll(workers);
        JoinAllAndCheck(workers);
        Assert.All(seenAfter.ToArray(), n => Assert.Equal(3, n));
        Assert.Equal([0, 1, 2], indices.ToArray().Order());
        Assert.False(barrier.IsBroken);
    }

    [Fact]
    public void A_barrier_broken_by_a_timeout_fails_the_others_until_reset()
    {
        using var barrier = new ProcessBarrier(2);
        Assert.False(barrier.SignalAndWait(TimeSpan.FromMilliseconds(50)));
        Assert.True(barrier.IsBroken);
        Assert.Throws<BrokenBarrierException>(() => barrier.SignalAndWait());
        barrier.Reset();
        Assert.False(barrier.IsBroken);
        var other = new Thread(() => barrier.SignalAndWait()) { IsBackground = true };
        other.Start();
        Assert.True(barrier.SignalAndWait(TestSupport.Patience));
        Assert.True(other.Join(TestSupport.Patience));

        var waiter = Task.Run(() => barrier.SignalAndWait());
        Assert.True(TestSupport.Eventually(() => barrier.ParticipantsWaiting == 1, TestSupport.Patience));
        barrier.Abort();
        var e = Assert.Throws<AggregateException>(() => waiter.Wait(TestSupport.Patience));
        Assert.IsType<BrokenBarrierException>(e.InnerException);
    }

    [Fact]
    public void The_next_acquirer_of_a_lock_whose_holder_was_SIGKILLed_gets_it_and_is_told()
    {
        using var gate = new ProcessLock();
        using var holding = new ProcessEvent();
        var holder = StartHolder(gate, holding);
        Assert.True(holding.Wait(TestSupport.Patience), "the holder never took the lock");
        Assert.Equal(holder.Pid, gate.HolderProcessId);
        Assert.False(gate.TryAcquire(TimeSpan.FromMilliseconds(100)));

        var waiting = AcquireInBackground(gate);
        Thread.Sleep(100); // let the waiter go to sleep in the kernel
        holder.Kill();
        TestSupport.JoinOrFail(holder);
        var e = Assert.Throws<AggregateException>(() => waiting.Wait(TestSupport.Patience));
        var abandoned = Assert.IsType<AbandonedLockException>(e.InnerException);
        Assert.Equal(holder.Pid, abandoned.DeadProcessId);
        Assert.Equal(Environment.ProcessId, gate.HolderProcessId);
        gate.Release();
        Assert.False(gate.IsLocked);
        using (gate.Acquire()) Assert.True(gate.IsLocked);
    }

    // Their own methods: lambdas of one scope share one closure, and the worker's would ship the task too.
    private static Task<bool> AcquireInBackground(ProcessLock gate) => Task.Run(() => gate.TryAcquire(TestSupport.Patience));

    private static WorkerProcess StartHolder(ProcessLock gate, ProcessEvent holding)
    {
        var holder = new WorkerProcess(() =>
        {
            gate.Acquire();
            holding.Set();
            Thread.Sleep(120_000);
        });
        holder.Start();
        return holder;
    }

    [Fact]
    public void Releasing_what_is_not_held_is_refused()
    {
        using var gate = new ProcessLock();
        Assert.Throws<SynchronizationLockException>(gate.Release);
        using var r = new ProcessRLock();
        Assert.Throws<SynchronizationLockException>(r.Release);
    }

    [Fact]
    public void An_RLock_is_reentrant_for_its_thread_and_exclusive_for_others()
    {
        using var r = new ProcessRLock();
        using (r.Acquire())
        using (r.Acquire())
        {
            Assert.Equal(2, r.RecursionCount);
            Assert.True(r.IsHeldByCurrentThread);
            Assert.False(OnOtherThread(() => r.TryAcquire(TimeSpan.FromMilliseconds(50))));
            Assert.Throws<SynchronizationLockException>(() => OnOtherThread(() => { r.Release(); return 0; }));
        }
        Assert.Equal(0, r.RecursionCount);
        Assert.True(OnOtherThread(() => { var ok = r.TryAcquire(); r.Release(); return ok; }));
    }

    [Fact]
    public void A_condition_wakes_a_process_waiting_for_a_predicate()
    {
        using var cond = new ProcessCondition();
        using var value = SharedValue<int>.Create();
        using var result = SharedValue<int>.Create();
        var waiter = new WorkerProcess(() =>
        {
            using (cond.Acquire())
            {
                result.Value = cond.WaitFor(() => value.Value == 42, TimeSpan.FromSeconds(50)) ? 1 : -1;
            }
        });
        waiter.Start();
        Thread.Sleep(200);
        using (cond.Acquire())
        {
            value.Value = 42;
            cond.NotifyAll();
        }
        JoinAllAndCheck([waiter]);
        Assert.Equal(1, result.Value);

        using (cond.Acquire()) Assert.False(cond.Wait(TimeSpan.FromMilliseconds(50)));
        Assert.Throws<SynchronizationLockException>(() => cond.Wait(TimeSpan.Zero));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(int.MaxValue, 3)] // NotifyAll
    public void Notify_n_wakes_at_most_n_of_three_waiting_processes(int count, int expectedWoken)
    {
        using var cond = new ProcessCondition();
        using var ready = SharedValue<int>.Create();
        using var releasing = SharedValue<int>.Create();
        using var woken = SharedArray<int>.Create(3);
        var waiters = Enumerable.Range(0, 3).Select(i => new WorkerProcess(() =>
        {
            using (cond.Acquire())
            {
                ready.Add(1);
                // 1: woken by the Notify under test; 2: by the NotifyAll that ends the test.
                woken[i] = cond.Wait(TestSupport.Patience) ? (releasing.Value == 0 ? 1 : 2) : -1;
            }
        }) { Name = $"waiter-{i}" }).ToArray();
        foreach (var w in waiters) w.Start();
        // Each waiter counts itself while holding the lock and releases it only by waiting: once the
        // count is 3 and the lock is ours, all three are waiting.
        Assert.True(TestSupport.Eventually(() => ready.Value == 3, TestSupport.Patience), "the waiters did not start");
        using (cond.Acquire()) cond.Notify(count);
        int FirstRound() => woken.ToArray().Count(r => r == 1);
        Assert.True(TestSupport.Eventually(() => FirstRound() >= expectedWoken, TestSupport.Patience), "the notified waiters did not wake");
        Thread.Sleep(300); // room for a wrongly woken one to show up
        Assert.Equal(expectedWoken, FirstRound());
        using (cond.Acquire())
        {
            releasing.Value = 1;
            cond.NotifyAll();
        }
        JoinAllAndCheck(waiters);
        Assert.Equal(3 - expectedWoken, woken.ToArray().Count(r => r == 2));
    }

    [Fact]
    public async Task Async_waits_complete_when_signalled_and_honour_cancellation()
    {
        using var gate = new ProcessLock();
        using var ev = new ProcessEvent();
        using (await gate.AcquireAsync())
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await gate.AcquireAsync(cts.Token));
            Assert.False(await gate.TryAcquireAsync(TimeSpan.FromMilliseconds(30)));
        }
        var waiting = ev.WaitAsync(TimeSpan.FromSeconds(50)).AsTask();
        Assert.False(waiting.IsCompleted);
        var setter = new WorkerProcess(() => ev.Set());
        setter.Start();
        Assert.True(await waiting.WaitAsync(TestSupport.Patience));
        JoinAllAndCheck([setter]);

        using var slots = new ProcessSemaphore(0);
        var acquire = slots.AcquireAsync().AsTask();
        slots.Release();
        (await acquire.WaitAsync(TestSupport.Patience)).Dispose();
        Assert.Equal(1, slots.CurrentCount);

        using var barrier = new ProcessBarrier(2);
        var first = barrier.SignalAndWaitAsync().AsTask();
        var second = await barrier.SignalAndWaitAsync().AsTask().WaitAsync(TestSupport.Patience);
        Assert.Equal(1, (await first.WaitAsync(TestSupport.Patience)) + second);
    }
}
