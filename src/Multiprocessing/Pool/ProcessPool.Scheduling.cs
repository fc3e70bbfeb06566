using System.Diagnostics;

namespace Multiprocessing;

// The scheduler: shipping functions, the queue, and handing chunks to workers.
public sealed partial class ProcessPool
{
    private ShippedFunction Ship(Delegate func, bool cacheable)
    {
        // The worker awaits Task and ValueTask alike, but only Task has overloads here (Task and ValueTask overloads
        // side by side would make every async lambda ambiguous): a ValueTask function would come back untyped.
        var returns = func.Method.ReturnType;
        if (returns == typeof(ValueTask) || (returns.IsGenericType && returns.GetGenericTypeDefinition() == typeof(ValueTask<>)))
            throw new ArgumentException(
                $"The function {func.Method.Name} returns a {TravelErrors.Friendly(returns)}; the pool awaits functions that return a Task. " +
                "Wrap it: pool.Map(async x => await f(x), items), or f(x).AsTask().", nameof(func));
        using var crossing = Crossing();
        if (DelegateShipper.IsStateless(func))
            return _statelessFunctions.GetOrAdd((func.Method, func.GetType()), _ => new ShippedFunction(Interlocked.Increment(ref _nextFunctionId), ShippedFunction.Encode(func, _serializer), shared: true));
        return new ShippedFunction(cacheable ? Interlocked.Increment(ref _nextFunctionId) : 0, ShippedFunction.Encode(func, _serializer));
    }

    /// <summary>While values are written for the calls, when they go to another machine: see <see cref="ProcessPoolOptions.Destination"/>.</summary>
    internal MachineBoundary.Scope? Crossing() => _options.Destination is { } destination ? MachineBoundary.Crossing(destination) : null;

    /// <summary>A chunk's items, serialized for wherever the calls go (see <see cref="Chunk.Serialize"/>).</summary>
    internal ReadOnlyMemory<byte> SerializeItems<TItem>(TItem[] items, string? call = null, int offset = 0)
    {
        using (Crossing()) return Chunk.Serialize(_serializer, items, call, offset);
    }

    /// <summary>
    /// A job whose function was shipped for it alone (a closure) tells the workers to drop it when it
    /// is over, so a long-lived pool does not keep every Map's captured values forever.
    /// </summary>
    private TJob Forgettable<TJob>(TJob job) where TJob : PoolJob
    {
        var id = job.Function.Id;
        if (id != 0 && !job.Function.Shared)
            job.WhenFinished = () =>
            {
                foreach (var w in _lanes) w?.Forget(id);
            };
        return job;
    }

    private void ThrowIfNotAccepting()
    {
        lock (_lock) ThrowIfNotAcceptingLocked();
    }

    private void ThrowIfNotAcceptingLocked()
    {
        switch (_state)
        {
            case State.Closed: throw new InvalidOperationException("The pool was closed and accepts no new work.");
            case State.Terminated: throw new ObjectDisposedException(nameof(ProcessPool), "The pool was terminated or disposed.");
            case State.Broken: throw new InvalidOperationException($"The pool is broken: {_brokenBy!.Message}", _brokenBy);
        }
        if (_cannotStart is { } error) throw CannotStart(error);
    }

    private void Submit(PoolJob job, List<Chunk> chunks, int items)
    {
        if (chunks.Count == 0) return;
        LaneState?[] workers;
        lock (_lock)
        {
            ThrowIfNotAcceptingLocked();
            foreach (var c in chunks) _queue.AddLast(c);
            workers = _lanes;
        }
        _metrics.TasksSubmitted.Add(items);
        // A single call goes out on the caller's thread (the latency of Apply is one hop shorter);
        // bulk work goes through the workers' writer threads, so the caller never waits on a full socket.
        // Idle workers first, so a single call does not queue behind a long one.
        foreach (var w in workers.Where(w => w is not null).OrderBy(w => w!.InFlight.Count))
        {
            if (chunks.Count == 1) Dispatch(w!, onCallerThread: true);
            else w!.RequestDispatch();
        }
    }

    /// <summary>
    /// Fills the worker's window from the queue and sends; the take and the send are atomic per
    /// worker so calls arrive in queue order. It may block on a full socket, so it never runs on a
    /// worker's reader thread: a reader that stopped reading could deadlock with a worker that is
    /// itself blocked writing results.
    /// </summary>
    internal void Dispatch(LaneState worker, bool onCallerThread = false)
    {
        // A caller never waits behind a writer thread that may be stuck on a full socket: it hands over.
        if (onCallerThread && !worker.SendLock.TryEnter())
        {
            worker.RequestDispatch();
            return;
        }
        if (!onCallerThread) worker.SendLock.Enter();
        try
        {
            List<Chunk>? take = null;
            bool thenExit;
            lock (_lock)
            {
                if (!worker.Ready || worker.Gone || worker.ExitSent) return;
                var max = _options.MaxTasksPerChild ?? int.MaxValue;
                var (fairShare, serving) = FairShareLocked();
                while (!worker.Retiring && worker.Assigned < max && _queue.First is { } node
                       && worker.InFlight.Count < Math.Min(node.Value.Job.Window(_options.LaneLatency, LeastWindowLocked(serving)), fairShare))
                {
                    _queue.RemoveFirst();
                    var chunk = node.Value;
                    if (chunk.Job.Finished) continue;
                    chunk.CallId = ++_nextCallId;
                    worker.InFlight.Enqueue(chunk);
                    worker.Assigned++;
                    (take ??= []).Add(chunk);
                }
                if (worker.Assigned >= max) worker.Retiring = true;
                if (_state == State.Closed && _queue.Count == 0) worker.Retiring = true;
                thenExit = worker.Retiring && !worker.ExitSent;
                if (thenExit) worker.ExitSent = true;
            }
            if (take is not null)
                _metrics.TasksRunning.Add(take.Sum(c => c.Count));
            if (take is not null || thenExit || worker.Lane.HasForgets) worker.Lane.Send(take ?? [], thenExit);
        }
        finally
        {
            worker.SendLock.Exit();
        }
    }

    /// <summary>
    /// The most chunks one worker may hold: what is outstanding (queued or in flight) split evenly over the
    /// workers that can run it, so no worker takes work that another would otherwise sit idle without; and how
    /// many workers can.
    /// </summary>
    private (int Share, int Serving) FairShareLocked()
    {
        var outstanding = _queue.Count;
        var serving = 0;
        foreach (var w in _lanes)
        {
            if (w is null || w.Gone) continue;
            outstanding += w.InFlight.Count;
            if (w.Ready && !w.Retiring) serving++;
        }
        return (Math.Max(1, (outstanding + Math.Max(serving, 1) - 1) / Math.Max(serving, 1)), serving);
    }

    /// <summary>The fewest calls a lane may hold now (see <see cref="ProcessPoolOptions.MinWindowWhileQueued"/>).</summary>
    private int LeastWindowLocked(int serving) =>
        _options.MinWindowWhileQueued > _options.MinWindow && _queue.Count >= _options.MinWindowWhileQueued * Math.Max(serving, 1)
            ? _options.MinWindowWhileQueued
            : _options.MinWindow;

    private void SendExit(LaneState worker)
    {
        lock (worker.SendLock) worker.Lane.Send([], thenExit: true);
    }

    /// <summary>Marks the workers that hold nothing as leaving; returns them so Exit can be sent outside the lock.</summary>
    private List<LaneState> RetireIdleWorkersLocked()
    {
        var idle = new List<LaneState>();
        if (_queue.Count > 0) return idle;
        foreach (var w in _lanes)
        {
            if (w is null || w.Gone || w.ExitSent || !w.Ready || w.InFlight.Count > 0) continue;
            w.Retiring = true;
            w.ExitSent = true;
            idle.Add(w);
        }
        return idle;
    }
}
