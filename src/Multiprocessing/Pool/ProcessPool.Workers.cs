using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Multiprocessing;

// Worker processes: start, ready, results, exits, crash attribution, recovery, timeouts.
public sealed partial class ProcessPool
{
    /// <summary>The lane's process exists: false when the pool was terminated meanwhile (the lane then kills it).</summary>
    internal bool OnLaneStarted(LaneState worker)
    {
        lock (_lock)
            if (worker.KillReason == KillReason.Terminated) return false;
        _logger.LogInformation("Pool {Pool} worker {Name} started (pid {Pid})", _poolId, worker.Lane.Name, worker.Lane.Pid);
        return true;
    }

    internal void OnLaneFaulted(LaneState worker, Exception error) =>
        _logger.LogError(error, "Pool {Pool} worker {Name} (pid {Pid}): {Error}; killing it", _poolId, worker.Lane.Name, worker.Lane.Pid, error.Message);

    internal void OnLaneReady(LaneState worker)
    {
        lock (_lock)
        {
            worker.Ready = true;
            _failedStarts = 0;
            _killedStarts = 0;
            _cannotStart = null;
        }
        worker.RequestDispatch();
    }

    internal void OnInitializerFailed(LaneState worker, Exception error)
    {
        _logger.LogError(error, "Pool {Pool} worker {Name}: the initializer threw; the pool is broken", _poolId, worker.Lane.Name);
        Break(new MultiprocessingException($"The pool's initializer threw in worker {Who(worker)}: {error.Message}", error));
    }

    internal void OnLaneFailedToStart(LaneState worker, Exception error)
    {
        _logger.LogError(error, "Pool {Pool} worker {Name} failed to start", _poolId, worker.Lane.Name);
        bool broken;
        var pause = TimeSpan.Zero;
        lock (_lock)
        {
            worker.Gone = true;
            if (error is TimeoutException or WorkerCrashedException { Signal: 9 or 15 } && _state == State.Running)
            {
                pause = StartFailedLocked(error);
                broken = false;
            }
            else broken = ++_failedStarts >= 3 || _state is State.Terminated or State.Broken;
        }
        if (broken) Break(error);
        else StartWorker(worker.Slot, replacing: true, pause);
        FailQueuedIfCannotStart();
        CheckAllExited();
    }

    /// <summary>
    /// A worker was killed from outside (SIGKILL, SIGTERM) or timed out before it was ready: nothing says the
    /// next one will be, so the pool does not give up, but pauses (0.1 s, doubling, at most 5 s) before the
    /// next start. Once no worker has been ready for WorkerStartTimeout, work fails with the reason until one is.
    /// Returns the pause. Caller holds the lock.
    /// </summary>
    private TimeSpan StartFailedLocked(Exception why)
    {
        if (_killedStarts++ == 0) _killedStartsSince = Stopwatch.GetTimestamp();
        var anyReady = _lanes.Any(w => w is { Ready: true, Gone: false });
        if (!anyReady && Stopwatch.GetElapsedTime(_killedStartsSince) >= _options.WorkerStartTimeout)
        {
            var crash = why as WorkerCrashedException;
            _cannotStart = new WorkerCrashedException(
                $"No worker of the pool could be started for {_options.WorkerStartTimeout.TotalSeconds:0.#} s ({_killedStarts} in a row were killed or timed out before they were ready; the last: {why.Message}). " +
                "The pool keeps starting workers and takes work again once one is ready; check what kills them (an out-of-memory killer, a container's limits).",
                crash?.ProcessId ?? 0, crash?.ExitCode, crash?.Signal, crash?.StandardErrorTail ?? []);
        }
        return TimeSpan.FromMilliseconds(Math.Min(5000, 100 * Math.Pow(2, Math.Min(_killedStarts - 1, 6))));
    }

    /// <summary>A fresh exception for each caller (one instance thrown on many threads would mix their stack traces).</summary>
    private static WorkerCrashedException CannotStart(WorkerCrashedException reason) =>
        new(reason.Message, reason.ProcessId, reason.ExitCode, reason.Signal, reason.StandardErrorTail);

    /// <summary>While no worker can start, what waits in the queue fails with the reason rather than waiting on.</summary>
    private void FailQueuedIfCannotStart()
    {
        List<Chunk> failed;
        WorkerCrashedException? error;
        lock (_lock)
        {
            error = _cannotStart;
            if (error is null || _queue.Count == 0) return;
            failed = [.. _queue];
            _queue.Clear();
        }
        foreach (var chunk in failed)
        {
            _metrics.TasksFailed.Add(chunk.Count);
            chunk.Job.OnFailure(chunk, CannotStart(error));
        }
    }

    // refill is false while more answers are already buffered: the worker is refilled once, after the last of them, in one send.
    internal void OnCallDone(LaneState worker, long callId, long elapsedTicks, ReadOnlyMemory<byte> results, Exception? error, bool refill)
    {
        Chunk chunk;
        var retireForMemory = false;
        lock (_lock)
        {
            if (!worker.InFlight.TryDequeue(out chunk!) || chunk.CallId != callId)
                throw new InvalidDataException($"Worker {worker.Lane.Name} answered call {callId} out of order.");
            chunk.Job.RecordElapsed(elapsedTicks);
            if (_options.MaxMemoryPerChild is { } limit && !worker.Retiring && worker.Lane.MemoryInUse() > limit)
            {
                worker.Retiring = true;
                retireForMemory = true;
            }
            if (_state == State.Closed && _queue.Count == 0 && worker.InFlight.Count == 0) worker.Retiring = true;
        }
        _metrics.TasksRunning.Add(-chunk.Count);
        if (error is null)
        {
            _metrics.TasksCompleted.Add(chunk.Count);
            chunk.Job.OnResult(chunk, results);
        }
        else
        {
            _metrics.TasksFailed.Add(chunk.Count);
            chunk.Job.OnFailure(chunk, error);
        }
        if (retireForMemory)
            _logger.LogInformation("Pool {Pool} worker {Name} exceeded MaxMemoryPerChild; replacing it", _poolId, worker.Lane.Name);
        if (refill || retireForMemory) worker.RequestDispatch();
    }

    private long _retriedTasks;

    /// <summary>How many tasks ran again after their lane was lost (see <see cref="ProcessPoolOptions.MaxRetries"/>).</summary>
    internal long RetriedTasks => Interlocked.Read(ref _retriedTasks);

    internal void OnLaneExited(LaneState worker, ExitStatus status)
    {
        List<Chunk> lost;
        bool replace;
        var pause = TimeSpan.Zero;
        KillReason reason;
        Exception? stopped;
        Chunk? running;
        List<Chunk> alsoBegun;
        lock (_lock)
        {
            worker.Gone = true;
            reason = worker.KillReason;
            lost = [.. worker.InFlight];
            worker.InFlight.Clear();
            stopped = _state switch
            {
                State.Terminated => new ObjectDisposedException(nameof(ProcessPool), "The process pool was terminated (or disposed) before this work finished."),
                State.Broken => _brokenBy,
                _ => null,
            };
            // The worker wrote down which call it was running: that one fails. The others (not started,
            // or finished with their results still batched in the worker) go back to the front of the
            // queue, in order, unless the pool is stopping.
            var runningCall = worker.Lane.Running.CallId;
            var runningIndex = lost.FindIndex(c => c.CallId == runningCall);
            // A crash after the worker took the call but before the user's code began is the worker's, not the
            // call's: it goes back to the queue too, a bounded number of times (a call that kills every worker
            // while its arguments are read must still end).
            if (runningIndex >= 0 && reason == KillReason.None && stopped is null && !worker.Lane.UserCodeStarted(runningCall)
                && ++lost[runningIndex].DiedBeforeStart < MaxDeathsBeforeStart)
                runningIndex = -1;
            running = runningIndex >= 0 ? lost[runningIndex] : null;
            // A lane that runs several calls at once (a cluster node) may have begun others too: those are not run
            // again elsewhere either (at most once), they fail with the running one.
            alsoBegun = reason == KillReason.None && stopped is null
                ? [.. lost.Where((c, i) => i != runningIndex && worker.Lane.UserCodeStarted(c.CallId))]
                : [];
            // With retries (a cluster pool's MaxRetries), what the lost lane had begun runs again elsewhere, a bounded number of times.
            if (reason == KillReason.None && stopped is null && _options.MaxRetries > 0)
            {
                if (running is not null && running.Retries < _options.MaxRetries)
                {
                    running.Retries++;
                    Interlocked.Add(ref _retriedTasks, running.Count);
                    runningIndex = -1;
                    running = null;
                }
                foreach (var chunk in alsoBegun.Where(c => c.Retries < _options.MaxRetries).ToList())
                {
                    chunk.Retries++;
                    Interlocked.Add(ref _retriedTasks, chunk.Count);
                    alsoBegun.Remove(chunk);
                }
            }
            if (stopped is null)
                for (var i = lost.Count - 1; i >= 0; i--)
                    if (i != runningIndex && !alsoBegun.Contains(lost[i])) _queue.AddFirst(lost[i]);
            // After Close, a worker is replaced only while queued work needs it (a crash requeues its chunks).
            replace = _state == State.Running || (_state == State.Closed && _queue.Count > 0);
            if (!worker.Ready && _state == State.Running && reason == KillReason.None)
            {
                if (status.Signal is 9 or 15) pause = StartFailedLocked(worker.Lane.Crashed(
                    $"Worker {Who(worker)} was killed by signal {status.Signal} before it was ready", status));
                else replace = ++_failedStarts < 3;
            }
        }
        var clean = status is { Code: 0, Signal: null } && lost.Count == 0 && worker.ExitSent;
        if (lost.Count > 0)
        {
            _metrics.TasksRunning.Add(-lost.Sum(c => c.Count));
            var failed = stopped is not null ? lost : running is not null ? [running, .. alsoBegun] : alsoBegun;
            var error = stopped ?? reason switch
            {
                KillReason.Timeout => new TimeoutException($"The task ran longer than TaskTimeout ({_options.TaskTimeout}); its worker {Who(worker)} was killed and replaced."),
                KillReason.Cancelled => new OperationCanceledException("The task was cancelled and did not stop within the grace period; its worker was killed."),
                _ when running is { DiedBeforeStart: >= MaxDeathsBeforeStart } => worker.Lane.Crashed(
                    $"{MaxDeathsBeforeStart} workers died after taking this task and before its code began (the last: {worker.Lane.Name}, pid {worker.Lane.Pid}), " +
                    "while its arguments were read; a type whose deserialization crashes the process is the usual cause", status),
                _ => worker.Lane.Crashed($"Worker {Who(worker)} died while running this task", status),
            };
            foreach (var chunk in failed)
            {
                _metrics.TasksFailed.Add(chunk.Count);
                chunk.Job.OnFailure(chunk, error);
            }
        }
        if (clean) _logger.LogInformation("Pool {Pool} worker {Name} (pid {Pid}) exited", _poolId, worker.Lane.Name, worker.Lane.Pid);
        else if (reason is KillReason.None && !worker.ExitSent)
            _logger.LogWarning("Pool {Pool} worker {Name} (pid {Pid}) crashed: exit code {Code}, signal {Signal}", _poolId, worker.Lane.Name, worker.Lane.Pid, status.Code, status.Signal);
        else _logger.LogInformation("Pool {Pool} worker {Name} (pid {Pid}) ended ({Reason})", _poolId, worker.Lane.Name, worker.Lane.Pid, reason);

        if (!worker.Ready && !replace && _state == State.Running && reason == KillReason.None)
        {
            Break(worker.Lane.Crashed("Workers keep dying before they are ready (three in a row); the pool gave up", status));
            return;
        }
        if (replace)
        {
            _metrics.WorkerRestarts.Add(1);
            StartWorker(worker.Slot, replacing: true, pause);
        }
        else
        {
            lock (_lock) if (_lanes[worker.Slot] == worker) _lanes[worker.Slot] = null;
            CheckAllExited();
        }
        FailQueuedIfCannotStart();
        foreach (var w in _lanes)
            if (w is not null && w != worker) w.RequestDispatch();
    }

    private void StartWorker(int slot, bool replacing, TimeSpan pause = default)
    {
        var worker = new LaneState(this, slot, $"Pool{_poolId}-Worker{Interlocked.Increment(ref _workerCounter)}", _newLane, replacing);
        lock (_lock)
        {
            if (replacing && _state is State.Terminated or State.Broken) return;
            _lanes[slot] = worker;
        }
        new Thread(() =>
        {
            if (pause > TimeSpan.Zero && _stopping.Wait(pause))
            {
                // Terminated during the pause: this worker never starts.
                lock (_lock) worker.Gone = true;
                CheckAllExited();
                return;
            }
            worker.Lane.Run();
        }) { IsBackground = true, Name = $"Multiprocessing {worker.Lane.Name}" }.Start();
    }

    private void CheckAllExited()
    {
        lock (_lock)
        {
            if (_state == State.Running) return;
            if (_lanes.All(w => w is null || w.Gone)) _allExited.TrySetResult();
        }
    }

    private void TerminateCore(Exception reason)
    {
        List<Chunk> pending;
        List<ILane> alive;
        lock (_lock)
        {
            if (_state is State.Terminated) return;
            if (_state is not State.Broken) _state = State.Terminated;
            pending = [.. _queue];
            _queue.Clear();
            alive = [];
            foreach (var w in _lanes)
            {
                if (w is null || w.Gone) continue;
                w.KillReason = KillReason.Terminated;
                // A lane still starting has no process yet: OnLaneStarted refuses it and it is killed on arrival.
                alive.Add(w.Lane);
            }
        }
        _stopping.Set(); // a replacement pausing before its start gives up at once
        foreach (var c in pending) c.Job.Abort(reason);
        foreach (var lane in alive) lane.Kill();
        _timeoutTimer?.Dispose();
        CheckAllExited();
        _ = Task.Run(async () =>
        {
            // Workers killed while spawning may never report; do not let Join wait on them forever.
            await Task.Delay(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
            _allExited.TrySetResult();
        });
    }

    private void Break(Exception error)
    {
        lock (_lock)
        {
            if (_state is State.Broken or State.Terminated) return;
            _state = State.Broken;
            _brokenBy = error;
        }
        TerminateCore(error);
        List<Chunk> held = [];
        lock (_lock)
            foreach (var w in _lanes)
                if (w is not null) held.AddRange(w.InFlight);
        foreach (var c in held) c.Job.Abort(error);
    }

    private void EnforceTimeouts()
    {
        if (_options.TaskTimeout is not { } timeout) return;
        var limit = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var now = Stopwatch.GetTimestamp();
        List<LaneState>? kill = null;
        lock (_lock)
        {
            foreach (var w in _lanes)
            {
                if (w is null || w.Gone || w.KillReason != KillReason.None) continue;
                var (call, since) = w.Lane.Running;
                if (call == 0 || now - since <= limit) continue;
                w.KillReason = KillReason.Timeout;
                (kill ??= []).Add(w);
            }
        }
        if (kill is null) return;
        foreach (var w in kill)
        {
            _logger.LogWarning("Pool {Pool} worker {Name} (pid {Pid}) ran a task past TaskTimeout {Timeout}; killing it", _poolId, w.Lane.Name, w.Lane.Pid, timeout);
            w.Lane.Kill();
        }
    }

    /// <summary>A lane as messages name it: its name, and its process id when it is a process here.</summary>
    private static string Who(LaneState worker) => worker.Lane.Pid > 0 ? $"{worker.Lane.Name} (pid {worker.Lane.Pid})" : worker.Lane.Name;
}
