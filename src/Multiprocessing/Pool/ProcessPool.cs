using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Multiprocessing.Interop;

namespace Multiprocessing;

/// <summary>
/// A pool of worker processes, like Python's <c>multiprocessing.Pool</c> and
/// <c>ProcessPoolExecutor</c>, that never hangs: a worker that crashes, overflows its stack, is
/// killed or runs past <see cref="ProcessPoolOptions.TaskTimeout"/> fails exactly the task it was
/// running (with <see cref="WorkerCrashedException"/> or <see cref="TimeoutException"/>), is
/// replaced, and the pool goes on. Disposing it terminates the workers, as Python's <c>with Pool()</c>;
/// work still pending then fails with <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed class ProcessPool : IDisposable, IAsyncDisposable
{
    private static int _poolCounter;

    private readonly ProcessPoolOptions _options;
    private readonly ISerializer _serializer;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly LinkedList<Chunk> _queue = new();
    private readonly PoolWorker?[] _workers;
    private readonly ConcurrentDictionary<(MethodInfo, Type), ShippedFunction> _statelessFunctions = new();
    private readonly TaskCompletionSource _allExited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Timer? _timeoutTimer;
    private readonly int _poolId = Interlocked.Increment(ref _poolCounter);
    private State _state = State.Running;
    private Exception? _brokenBy;
    private long _nextCallId;
    private int _nextFunctionId;
    private int _workerCounter;
    private int _failedStarts;
    // Workers killed from outside before they were ready, in a row, and since when: they are replaced after
    // growing pauses, and past WorkerStartTimeout without a ready worker the work fails (see StartFailed).
    private int _killedStarts;
    private long _killedStartsSince;
    private WorkerCrashedException? _cannotStart;
    private readonly ManualResetEventSlim _stopping = new();

    private enum State { Running, Closed, Terminated, Broken }

    /// <summary>How many workers may die with a chunk taken but not begun before that chunk fails.</summary>
    private const int MaxDeathsBeforeStart = 3;

    /// <summary>A pool of <see cref="Environment.ProcessorCount"/> workers with default options.</summary>
    public ProcessPool() : this(new ProcessPoolOptions()) { }

    /// <summary>A pool of <paramref name="processes"/> workers with default options (Python: <c>Pool(4)</c>).</summary>
    /// <param name="processes">How many worker processes; at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="processes"/> is less than 1.</exception>
    public ProcessPool(int processes) : this(new ProcessPoolOptions { Processes = processes >= 1 ? processes : throw new ArgumentOutOfRangeException(nameof(processes), processes, "A pool needs at least 1 worker process.") }) { }

    /// <summary>A pool with the given options. Workers start in the background; work submitted meanwhile waits for them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the message says which and why).</exception>
    public ProcessPool(ProcessPoolOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Processes is < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Processes, "ProcessPoolOptions.Processes must be at least 1 (or null for one per processor).");
        if (options.MaxTasksPerChild is < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxTasksPerChild, "ProcessPoolOptions.MaxTasksPerChild must be at least 1 (or null for no limit).");
        if (options.TaskTimeout is { } t && t <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), t, "ProcessPoolOptions.TaskTimeout must be positive (or null for no limit).");
        if (options.MaxMemoryPerChild is < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxMemoryPerChild, "ProcessPoolOptions.MaxMemoryPerChild must be a positive number of bytes (or null for no limit).");
        if (options.WorkerStartTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), options.WorkerStartTimeout, "ProcessPoolOptions.WorkerStartTimeout must be positive.");
        if (options.CancellationGracePeriod < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), options.CancellationGracePeriod, "ProcessPoolOptions.CancellationGracePeriod cannot be negative.");

        _options = options;
        _serializer = options.Serializer ?? new MessagePackObjectSerializer();
        _logger = options.Logger ?? NullLogger.Instance;
        Processes = options.Processes ?? Environment.ProcessorCount;
        _workers = new PoolWorker?[Processes];
        if (options.Initializer is not null)
        {
            // Refuse an initializer that cannot travel now, not in every worker.
            _ = ShippedFunction.Encode(options.Initializer, _serializer);
        }
        for (var slot = 0; slot < Processes; slot++) StartWorker(slot, replacing: false);
        if (options.TaskTimeout is { } timeout)
        {
            var period = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 10, 250));
            _timeoutTimer = new Timer(_ => EnforceTimeouts(), null, period, period);
        }
    }

    /// <summary>The number of worker processes.</summary>
    public int Processes { get; }

    // ---------------------------------------------------------------- Map and Starmap

    /// <summary>
    /// Applies <paramref name="func"/> to every item in worker processes and returns the results in
    /// input order. The input is split into chunks of <paramref name="chunkSize"/> items (default:
    /// items / (4 x workers), rounded up, as in Python). Throws the first failure.
    /// </summary>
    public TResult[] Map<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize = null) =>
        MapAsync(func, items, chunkSize).GetAwaiter().GetResult();

    /// <summary>As <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?)"/>, reporting progress as chunks complete.</summary>
    public TResult[] Map<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress) =>
        MapAsync(func, items, chunkSize, progress, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// The asynchronous <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?)"/>. Cancelling
    /// drops the queued chunks at once and cancels the running ones (see <see cref="ProcessPoolOptions.CancellationGracePeriod"/>).
    /// </summary>
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize = null, CancellationToken cancellationToken = default) =>
        MapAsync(func, items, chunkSize, null, cancellationToken);

    /// <summary>The asynchronous Map, reporting progress as chunks complete.</summary>
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken) =>
        MapCore<T, TResult>(func, items, chunkSize, progress, cancellationToken);

    /// <summary>Like Python's <c>starmap</c>: each item is a tuple of the function's two arguments.</summary>
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> func, IEnumerable<(T1, T2)> items, int? chunkSize = null) =>
        MapCore<(T1, T2), TResult>(func, items, chunkSize, null, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Like Python's <c>starmap</c>: each item is a tuple of the function's three arguments.</summary>
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null) =>
        MapCore<(T1, T2, T3), TResult>(func, items, chunkSize, null, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>The asynchronous two-argument <c>starmap</c>.</summary>
    public Task<TResult[]> StarmapAsync<T1, T2, TResult>(Func<T1, T2, TResult> func, IEnumerable<(T1, T2)> items, int? chunkSize = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2), TResult>(func, items, chunkSize, null, cancellationToken);

    /// <summary>The asynchronous three-argument <c>starmap</c>.</summary>
    public Task<TResult[]> StarmapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2, T3), TResult>(func, items, chunkSize, null, cancellationToken);

    private Task<TResult[]> MapCore<TItem, TResult>(Delegate func, IEnumerable<TItem> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentNullException.ThrowIfNull(items);
        if (chunkSize is < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunkSize must be at least 1 (or null for Python's default).");
        ThrowIfNotAccepting();
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<TResult[]>(cancellationToken);

        var all = items as TItem[] ?? items.ToArray();
        var size = chunkSize ?? Math.Max(1, (all.Length + 4 * Processes - 1) / (4 * Processes));
        var chunkCount = (all.Length + size - 1) / size;
        var job = Forgettable(new MapJob<TResult>(Ship(func, cacheable: true), _serializer, all.Length, chunkCount, progress));
        // Chunks are handed over in growing batches, so workers start on the first ones while the
        // rest are still being serialized (this matters for many small chunks).
        var batch = new List<Chunk>();
        var batchItems = 0;
        try
        {
            for (var i = 0; i < chunkCount; i++)
            {
                var offset = i * size;
                var count = Math.Min(size, all.Length - offset);
                batch.Add(new Chunk(job, i, offset, count, Chunk.Serialize(_serializer, chunkCount == 1 ? all : all.AsSpan(offset, count).ToArray())));
                batchItems += count;
                if (batch.Count >= Math.Min(1024, 8 << Math.Min(i / 64, 7)) || i == chunkCount - 1)
                {
                    Submit(job, batch, batchItems);
                    batch = [];
                    batchItems = 0;
                }
            }
        }
        catch (Exception e)
        {
            // What was already handed over must not run on for nothing.
            job.Abort(e);
            CancelRunning(job);
            throw;
        }
        WatchCancellation(job, cancellationToken);
        return job.Task;
    }

    // ---------------------------------------------------------------- Imap family

    /// <summary>
    /// A lazy, ordered Map: results come back in input order as they are ready. The input is read
    /// lazily with a bounded read-ahead, so an endless sequence with a bounded consumer works.
    /// On a failure, the results before it are yielded and then the failure is thrown.
    /// </summary>
    public IEnumerable<TResult> Imap<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1) =>
        Stream<T, TResult>(func, items, chunkSize, ordered: true);

    /// <summary>Like <see cref="Imap{T, TResult}"/> but yields results in the order they complete.</summary>
    public IEnumerable<TResult> ImapUnordered<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1) =>
        Stream<T, TResult>(func, items, chunkSize, ordered: false);

    /// <summary>The asynchronous <see cref="Imap{T, TResult}"/>.</summary>
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) =>
        StreamAsync<T, TResult>(func, items, chunkSize, ordered: true, cancellationToken);

    /// <summary>The asynchronous <see cref="ImapUnordered{T, TResult}"/>.</summary>
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) =>
        StreamAsync<T, TResult>(func, items, chunkSize, ordered: false, cancellationToken);

    private IEnumerable<TResult> Stream<T, TResult>(Delegate func, IEnumerable<T> items, int chunkSize, bool ordered)
    {
        var (job, feeder) = StartStream<T, TResult>(func, items, chunkSize, ordered);
        return Iterate();

        IEnumerable<TResult> Iterate()
        {
            try
            {
                while (true)
                {
                    var results = NextResults(job, feeder, out var finished);
                    if (finished) yield break;
                    if (results is null) job.WaitForOutcome();
                    else foreach (var r in results) yield return r;
                }
            }
            finally
            {
                feeder.Dispose();
                job.Stop();
                CancelRunning(job);
            }
        }
    }

    private async IAsyncEnumerable<TResult> StreamAsync<T, TResult>(Delegate func, IEnumerable<T> items, int chunkSize, bool ordered,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (job, feeder) = StartStream<T, TResult>(func, items, chunkSize, ordered);
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var results = NextResults(job, feeder, out var finished);
                if (finished) yield break;
                if (results is null) await job.WaitForOutcomeAsync(cancellationToken).ConfigureAwait(false);
                else foreach (var r in results) yield return r;
            }
        }
        finally
        {
            feeder.Dispose();
            job.Stop();
            CancelRunning(job);
        }
    }

    /// <summary>One step of an Imap loop: feed the input, then the next chunk's results, null to wait, or finished; throws a failure that is due.</summary>
    private static TResult[]? NextResults<T, TResult>(StreamJob<TResult> job, StreamFeeder<T, TResult> feeder, out bool finished)
    {
        var more = feeder.TopUp();
        finished = false;
        if (job.TryTake(out var results, out var error))
        {
            if (error is not null) ExceptionDispatch(error);
            return results;
        }
        finished = !more && job.Consumed == job.Submitted;
        return null;
    }

    private (StreamJob<TResult> Job, StreamFeeder<T, TResult> Feeder) StartStream<T, TResult>(Delegate func, IEnumerable<T> items, int chunkSize, bool ordered)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentNullException.ThrowIfNull(items);
        if (chunkSize < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunkSize must be at least 1.");
        ThrowIfNotAccepting();
        var job = Forgettable(new StreamJob<TResult>(Ship(func, cacheable: true), _serializer, ordered));
        // Enough chunks ahead to keep every worker's window full, but bounded so an endless input is fine.
        var readAhead = Processes * Math.Max(4, 256 / chunkSize);
        return (job, new StreamFeeder<T, TResult>(this, job, items, chunkSize, readAhead));
    }

    /// <summary>Reads the input on the consumer's thread, a chunk at a time, only as far ahead as allowed.</summary>
    private sealed class StreamFeeder<T, TResult>(ProcessPool pool, StreamJob<TResult> job, IEnumerable<T> items, int chunkSize, int readAhead) : IDisposable
    {
        private IEnumerator<T>? _input = items.GetEnumerator();
        private int _offset;

        /// <summary>Submits chunks up to the read-ahead bound; false once the input is exhausted.</summary>
        public bool TopUp()
        {
            if (_input is null) return false;
            List<Chunk>? batch = null;
            var items = 0;
            while (job.Submitted - job.Consumed < readAhead)
            {
                var buffer = new List<T>(chunkSize);
                while (buffer.Count < chunkSize && _input.MoveNext()) buffer.Add(_input.Current);
                if (buffer.Count > 0)
                {
                    (batch ??= []).Add(new Chunk(job, job.Submitted, _offset, buffer.Count, Chunk.Serialize(pool._serializer, buffer.ToArray())));
                    job.Submitted++;
                    _offset += buffer.Count;
                    items += buffer.Count;
                }
                if (buffer.Count < chunkSize)
                {
                    Dispose();
                    break;
                }
            }
            if (batch is not null) pool.Submit(job, batch, items);
            return _input is not null;
        }

        public void Dispose()
        {
            _input?.Dispose();
            _input = null;
        }
    }

    // ---------------------------------------------------------------- Apply

    /// <summary>Runs <paramref name="func"/> in a worker and returns its result, like Python's <c>apply</c>.</summary>
    public TResult Apply<TResult>(Func<TResult> func) => ApplyAsync(func).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="func"/>(<paramref name="arg1"/>) in a worker and returns its result.</summary>
    public TResult Apply<T1, TResult>(Func<T1, TResult> func, T1 arg1) => ApplyAsync(func, arg1).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="func"/> with two arguments in a worker and returns its result.</summary>
    public TResult Apply<T1, T2, TResult>(Func<T1, T2, TResult> func, T1 arg1, T2 arg2) => ApplyAsync(func, arg1, arg2).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="func"/> with three arguments in a worker and returns its result.</summary>
    public TResult Apply<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, T1 arg1, T2 arg2, T3 arg3) => ApplyAsync(func, arg1, arg2, arg3).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="func"/> with four arguments in a worker and returns its result.</summary>
    public TResult Apply<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => ApplyAsync(func, arg1, arg2, arg3, arg4).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/> in a worker and waits for it.</summary>
    public void Apply(Action action) => ApplyAsync(action).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/>(<paramref name="arg1"/>) in a worker and waits for it.</summary>
    public void Apply<T1>(Action<T1> action, T1 arg1) => ApplyAsync(action, arg1).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/> with two arguments in a worker and waits for it.</summary>
    public void Apply<T1, T2>(Action<T1, T2> action, T1 arg1, T2 arg2) => ApplyAsync(action, arg1, arg2).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/> with three arguments in a worker and waits for it.</summary>
    public void Apply<T1, T2, T3>(Action<T1, T2, T3> action, T1 arg1, T2 arg2, T3 arg3) => ApplyAsync(action, arg1, arg2, arg3).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/> with four arguments in a worker and waits for it.</summary>
    public void Apply<T1, T2, T3, T4>(Action<T1, T2, T3, T4> action, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => ApplyAsync(action, arg1, arg2, arg3, arg4).GetAwaiter().GetResult();

    /// <summary>
    /// Runs <paramref name="func"/> in a worker, like Python's <c>apply_async</c>. A failure faults
    /// only this task. Cancelling drops it if queued, or cancels it if running.
    /// </summary>
    public Task<TResult> ApplyAsync<TResult>(Func<TResult> func, CancellationToken cancellationToken = default) => ApplyCore<bool, TResult>(func, false, cancellationToken);
    /// <summary>Runs <paramref name="func"/>(<paramref name="arg1"/>) in a worker; see <see cref="ApplyAsync{TResult}(Func{TResult}, CancellationToken)"/>.</summary>
    public Task<TResult> ApplyAsync<T1, TResult>(Func<T1, TResult> func, T1 arg1, CancellationToken cancellationToken = default) => ApplyCore<T1, TResult>(func, arg1, cancellationToken);
    /// <summary>Runs <paramref name="func"/> with two arguments in a worker.</summary>
    public Task<TResult> ApplyAsync<T1, T2, TResult>(Func<T1, T2, TResult> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2), TResult>(func, (arg1, arg2), cancellationToken);
    /// <summary>Runs <paramref name="func"/> with three arguments in a worker.</summary>
    public Task<TResult> ApplyAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3), TResult>(func, (arg1, arg2, arg3), cancellationToken);
    /// <summary>Runs <paramref name="func"/> with four arguments in a worker.</summary>
    public Task<TResult> ApplyAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3, T4), TResult>(func, (arg1, arg2, arg3, arg4), cancellationToken);
    /// <summary>Runs <paramref name="action"/> in a worker.</summary>
    public Task ApplyAsync(Action action, CancellationToken cancellationToken = default) => ApplyCore<bool, bool>(action, false, cancellationToken);
    /// <summary>Runs <paramref name="action"/>(<paramref name="arg1"/>) in a worker.</summary>
    public Task ApplyAsync<T1>(Action<T1> action, T1 arg1, CancellationToken cancellationToken = default) => ApplyCore<T1, bool>(action, arg1, cancellationToken);
    /// <summary>Runs <paramref name="action"/> with two arguments in a worker.</summary>
    public Task ApplyAsync<T1, T2>(Action<T1, T2> action, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2), bool>(action, (arg1, arg2), cancellationToken);
    /// <summary>Runs <paramref name="action"/> with three arguments in a worker.</summary>
    public Task ApplyAsync<T1, T2, T3>(Action<T1, T2, T3> action, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3), bool>(action, (arg1, arg2, arg3), cancellationToken);
    /// <summary>Runs <paramref name="action"/> with four arguments in a worker.</summary>
    public Task ApplyAsync<T1, T2, T3, T4>(Action<T1, T2, T3, T4> action, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3, T4), bool>(action, (arg1, arg2, arg3, arg4), cancellationToken);

    private Task<TResult> ApplyCore<TItem, TResult>(Delegate func, TItem args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(func);
        ThrowIfNotAccepting();
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<TResult>(cancellationToken);
        // A closure differs per call: ship it inline rather than growing every worker's function table.
        var job = new ApplyJob<TResult>(Ship(func, cacheable: false), _serializer);
        Submit(job, [new Chunk(job, 0, 0, 1, Chunk.Serialize(_serializer, new[] { args }))], 1);
        WatchCancellation(job, cancellationToken);
        return job.Task;
    }

    // ---------------------------------------------------------------- lifecycle

    /// <summary>Accepts no new work; queued and running work completes, then the workers exit. See <see cref="Join()"/>.</summary>
    public void Close()
    {
        List<PoolWorker> idle;
        lock (_lock)
        {
            if (_state != State.Running) return;
            _state = State.Closed;
            idle = RetireIdleWorkersLocked();
        }
        foreach (var w in idle) SendExit(w);
    }

    /// <summary>
    /// Kills the workers now. Work still queued or running fails with <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Terminate() => TerminateCore(new ObjectDisposedException(nameof(ProcessPool), "The process pool was terminated (or disposed) before this work finished."));

    /// <summary>Waits for the workers to exit; call <see cref="Close"/> or <see cref="Terminate"/> first.</summary>
    /// <exception cref="InvalidOperationException">The pool is still accepting work.</exception>
    public void Join() => Join(Timeout.InfiniteTimeSpan);

    /// <summary>Waits at most <paramref name="timeout"/> for the workers to exit; false if they have not.</summary>
    /// <exception cref="InvalidOperationException">The pool is still accepting work.</exception>
    public bool Join(TimeSpan timeout)
    {
        lock (_lock)
        {
            if (_state == State.Running) throw new InvalidOperationException("Call Close() or Terminate() before Join(), as with Python's Pool.");
        }
        return _allExited.Task.Wait(timeout);
    }

    /// <summary>Terminates the pool (as Python's <c>with Pool()</c> does on exit) and waits briefly for the workers to go.</summary>
    public void Dispose()
    {
        Terminate();
        _allExited.Task.Wait(TimeSpan.FromSeconds(10));
        _timeoutTimer?.Dispose();
    }

    /// <summary>Terminates the pool and waits briefly for the workers to go.</summary>
    public async ValueTask DisposeAsync()
    {
        Terminate();
        await Task.WhenAny(_allExited.Task, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        if (_timeoutTimer is not null) await _timeoutTimer.DisposeAsync().ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- scheduling

    private ShippedFunction Ship(Delegate func, bool cacheable)
    {
        if (DelegateShipper.IsStateless(func))
            return _statelessFunctions.GetOrAdd((func.Method, func.GetType()), _ => new ShippedFunction(Interlocked.Increment(ref _nextFunctionId), ShippedFunction.Encode(func, _serializer), shared: true));
        return new ShippedFunction(cacheable ? Interlocked.Increment(ref _nextFunctionId) : 0, ShippedFunction.Encode(func, _serializer));
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
                foreach (var w in _workers) w?.Forget(id);
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
        PoolWorker?[] workers;
        lock (_lock)
        {
            ThrowIfNotAcceptingLocked();
            foreach (var c in chunks) _queue.AddLast(c);
            workers = _workers;
        }
        PoolMetrics.TasksSubmitted.Add(items);
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
    internal void Dispatch(PoolWorker worker, bool onCallerThread = false)
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
                var fairShare = FairShareLocked();
                while (!worker.Retiring && worker.Assigned < max && _queue.First is { } node
                       && worker.InFlight.Count < Math.Min(node.Value.Job.Window, fairShare))
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
                PoolMetrics.TasksRunning.Add(take.Sum(c => c.Count));
            if (take is not null || thenExit || worker.HasForgets) worker.Send(take ?? [], thenExit);
        }
        finally
        {
            worker.SendLock.Exit();
        }
    }

    /// <summary>
    /// The most chunks one worker may hold: what is outstanding (queued or in flight) split evenly over the
    /// workers that can run it, so no worker takes work that another would otherwise sit idle without.
    /// </summary>
    private int FairShareLocked()
    {
        var outstanding = _queue.Count;
        var serving = 0;
        foreach (var w in _workers)
        {
            if (w is null || w.Gone) continue;
            outstanding += w.InFlight.Count;
            if (w.Ready && !w.Retiring) serving++;
        }
        return Math.Max(1, (outstanding + Math.Max(serving, 1) - 1) / Math.Max(serving, 1));
    }

    private void SendExit(PoolWorker worker)
    {
        lock (worker.SendLock) worker.Send([], thenExit: true);
    }

    /// <summary>Marks the workers that hold nothing as leaving; returns them so Exit can be sent outside the lock.</summary>
    private List<PoolWorker> RetireIdleWorkersLocked()
    {
        var idle = new List<PoolWorker>();
        if (_queue.Count > 0) return idle;
        foreach (var w in _workers)
        {
            if (w is null || w.Gone || w.ExitSent || !w.Ready || w.InFlight.Count > 0) continue;
            w.Retiring = true;
            w.ExitSent = true;
            idle.Add(w);
        }
        return idle;
    }

    /// <summary>Gives the worker its process, unless the pool was terminated meanwhile (then the caller kills it).</summary>
    internal bool Adopt(PoolWorker worker, ChildProcess child)
    {
        lock (_lock)
        {
            if (worker.KillReason == KillReason.Terminated) return false;
            worker.Child = child;
            return true;
        }
    }

    internal void OnWorkerStarted(PoolWorker worker) =>
        _logger.LogInformation("Pool {Pool} worker {Name} started (pid {Pid})", _poolId, worker.Name, worker.Pid);

    internal void OnWorkerReady(PoolWorker worker)
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

    internal void OnInitializerFailed(PoolWorker worker, Exception error)
    {
        _logger.LogError(error, "Pool {Pool} worker {Name}: the initializer threw; the pool is broken", _poolId, worker.Name);
        Break(new MultiprocessingException($"The pool's initializer threw in worker {worker.Name} (pid {worker.Pid}): {error.Message}", error));
    }

    internal void OnWorkerFailedToStart(PoolWorker worker, Exception error)
    {
        _logger.LogError(error, "Pool {Pool} worker {Name} failed to start", _poolId, worker.Name);
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
        var anyReady = _workers.Any(w => w is { Ready: true, Gone: false });
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
            PoolMetrics.TasksFailed.Add(chunk.Count);
            chunk.Job.OnFailure(chunk, CannotStart(error));
        }
    }

    // refill is false while more answers are already buffered: the worker is refilled once, after the last of them, in one send.
    internal void OnCallDone(PoolWorker worker, long callId, long elapsedTicks, ReadOnlyMemory<byte> results, Exception? error, bool refill)
    {
        Chunk chunk;
        var retireForMemory = false;
        lock (_lock)
        {
            if (!worker.InFlight.TryDequeue(out chunk!) || chunk.CallId != callId)
                throw new InvalidDataException($"Worker {worker.Name} answered call {callId} out of order.");
            chunk.Job.RecordElapsed(elapsedTicks);
            if (_options.MaxMemoryPerChild is { } limit && !worker.Retiring && MemoryOf(worker.Pid) > limit)
            {
                worker.Retiring = true;
                retireForMemory = true;
            }
            if (_state == State.Closed && _queue.Count == 0 && worker.InFlight.Count == 0) worker.Retiring = true;
        }
        PoolMetrics.TasksRunning.Add(-chunk.Count);
        if (error is null)
        {
            PoolMetrics.TasksCompleted.Add(chunk.Count);
            chunk.Job.OnResult(chunk, results);
        }
        else
        {
            PoolMetrics.TasksFailed.Add(chunk.Count);
            chunk.Job.OnFailure(chunk, error);
        }
        if (retireForMemory)
            _logger.LogInformation("Pool {Pool} worker {Name} exceeded MaxMemoryPerChild; replacing it", _poolId, worker.Name);
        if (refill || retireForMemory) worker.RequestDispatch();
    }

    internal void OnWorkerExited(PoolWorker worker, ExitStatus status)
    {
        List<Chunk> lost;
        bool replace;
        var pause = TimeSpan.Zero;
        KillReason reason;
        Exception? stopped;
        Chunk? running;
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
            var runningCall = worker.Status.Read().CallId;
            var runningIndex = lost.FindIndex(c => c.CallId == runningCall);
            // A crash after the worker took the call but before the user's code began is the worker's, not the
            // call's: it goes back to the queue too, a bounded number of times (a call that kills every worker
            // while its arguments are read must still end).
            if (runningIndex >= 0 && reason == KillReason.None && stopped is null && !worker.Status.UserCodeStarted(runningCall)
                && ++lost[runningIndex].DiedBeforeStart < MaxDeathsBeforeStart)
                runningIndex = -1;
            running = runningIndex >= 0 ? lost[runningIndex] : null;
            if (stopped is null)
                for (var i = lost.Count - 1; i >= 0; i--)
                    if (i != runningIndex) _queue.AddFirst(lost[i]);
            // After Close, a worker is replaced only while queued work needs it (a crash requeues its chunks).
            replace = _state == State.Running || (_state == State.Closed && _queue.Count > 0);
            if (!worker.Ready && _state == State.Running && reason == KillReason.None)
            {
                if (status.Signal is 9 or 15) pause = StartFailedLocked(new WorkerCrashedException(
                    $"Worker {worker.Name} (pid {worker.Pid}) was killed by signal {status.Signal} before it was ready", worker.Pid, status.Code, status.Signal, worker.Child?.StderrTail() ?? []));
                else replace = ++_failedStarts < 3;
            }
        }
        var clean = status is { Code: 0, Signal: null } && lost.Count == 0 && worker.ExitSent;
        if (lost.Count > 0)
        {
            PoolMetrics.TasksRunning.Add(-lost.Sum(c => c.Count));
            var failed = stopped is not null ? lost : running is not null ? [running] : [];
            var error = stopped ?? reason switch
            {
                KillReason.Timeout => new TimeoutException($"The task ran longer than TaskTimeout ({_options.TaskTimeout}); its worker {worker.Name} (pid {worker.Pid}) was killed and replaced."),
                KillReason.Cancelled => new OperationCanceledException("The task was cancelled and did not stop within the grace period; its worker was killed."),
                _ when running is { DiedBeforeStart: >= MaxDeathsBeforeStart } => new WorkerCrashedException(
                    $"{MaxDeathsBeforeStart} workers died after taking this task and before its code began (the last: {worker.Name}, pid {worker.Pid}), " +
                    "while its arguments were read; a type whose deserialization crashes the process is the usual cause", worker.Pid, status.Code, status.Signal, worker.Child?.StderrTail() ?? []),
                _ => new WorkerCrashedException($"Worker {worker.Name} (pid {worker.Pid}) died while running this task", worker.Pid, status.Code, status.Signal, worker.Child?.StderrTail() ?? []),
            };
            foreach (var chunk in failed)
            {
                PoolMetrics.TasksFailed.Add(chunk.Count);
                chunk.Job.OnFailure(chunk, error);
            }
        }
        if (clean) _logger.LogInformation("Pool {Pool} worker {Name} (pid {Pid}) exited", _poolId, worker.Name, worker.Pid);
        else if (reason is KillReason.None && !worker.ExitSent)
            _logger.LogWarning("Pool {Pool} worker {Name} (pid {Pid}) crashed: exit code {Code}, signal {Signal}", _poolId, worker.Name, worker.Pid, status.Code, status.Signal);
        else _logger.LogInformation("Pool {Pool} worker {Name} (pid {Pid}) ended ({Reason})", _poolId, worker.Name, worker.Pid, reason);

        if (!worker.Ready && !replace && _state == State.Running && reason == KillReason.None)
        {
            Break(new WorkerCrashedException("Workers keep dying before they are ready (three in a row); the pool gave up", worker.Pid, status.Code, status.Signal, worker.Child?.StderrTail() ?? []));
            return;
        }
        if (replace)
        {
            PoolMetrics.WorkerRestarts.Add(1);
            StartWorker(worker.Slot, replacing: true, pause);
        }
        else
        {
            lock (_lock) if (_workers[worker.Slot] == worker) _workers[worker.Slot] = null;
            CheckAllExited();
        }
        FailQueuedIfCannotStart();
        foreach (var w in _workers)
            if (w is not null && w != worker) w.RequestDispatch();
    }

    private void StartWorker(int slot, bool replacing, TimeSpan pause = default)
    {
        var worker = new PoolWorker(this, slot, $"Pool{_poolId}-Worker{Interlocked.Increment(ref _workerCounter)}");
        lock (_lock)
        {
            if (replacing && _state is State.Terminated or State.Broken) return;
            _workers[slot] = worker;
        }
        new Thread(() =>
        {
            if (pause > TimeSpan.Zero && _stopping.Wait(pause))
            {
                // Terminated during the pause: this worker never starts.
                lock (_lock) worker.Gone = true;
                worker.Status.Unlink();
                worker.Status.Dispose();
                CheckAllExited();
                return;
            }
            worker.Run(_options.Initializer, _serializer, replacing);
        }) { IsBackground = true, Name = $"Multiprocessing {worker.Name}" }.Start();
    }

    private void CheckAllExited()
    {
        lock (_lock)
        {
            if (_state == State.Running) return;
            if (_workers.All(w => w is null || w.Gone)) _allExited.TrySetResult();
        }
    }

    private void TerminateCore(Exception reason)
    {
        List<Chunk> pending;
        List<ChildProcess> alive;
        lock (_lock)
        {
            if (_state is State.Terminated) return;
            if (_state is not State.Broken) _state = State.Terminated;
            pending = [.. _queue];
            _queue.Clear();
            alive = [];
            foreach (var w in _workers)
            {
                if (w is null || w.Gone) continue;
                w.KillReason = KillReason.Terminated;
                // A worker still starting has no process yet: Adopt refuses it and it is killed on arrival.
                if (w.Child is { } child) alive.Add(child);
            }
        }
        _stopping.Set(); // a replacement pausing before its start gives up at once
        foreach (var c in pending) c.Job.Abort(reason);
        foreach (var child in alive) child.Kill();
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
            foreach (var w in _workers)
                if (w is not null) held.AddRange(w.InFlight);
        foreach (var c in held) c.Job.Abort(error);
    }

    private void EnforceTimeouts()
    {
        if (_options.TaskTimeout is not { } timeout) return;
        var limit = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var now = Stopwatch.GetTimestamp();
        List<PoolWorker>? kill = null;
        lock (_lock)
        {
            foreach (var w in _workers)
            {
                if (w is null || w.Gone || w.KillReason != KillReason.None) continue;
                var (call, since) = w.Status.Read();
                if (call == 0 || now - since <= limit) continue;
                w.KillReason = KillReason.Timeout;
                (kill ??= []).Add(w);
            }
        }
        if (kill is null) return;
        foreach (var w in kill)
        {
            _logger.LogWarning("Pool {Pool} worker {Name} (pid {Pid}) ran a task past TaskTimeout {Timeout}; killing it", _poolId, w.Name, w.Pid, timeout);
            w.Child?.Kill();
        }
    }

    private void WatchCancellation(PoolJob job, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled) return;
        var registration = cancellationToken.Register(() =>
        {
            job.Abort(new OperationCanceledException(cancellationToken));
            CancelRunning(job);
        });
        // Once the job is over the registration only holds memory.
        _ = JobCompletion(job).ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
    }

    private static Task JobCompletion(PoolJob job) => job switch
    {
        IHasTask t => t.Completion,
        _ => Task.CompletedTask,
    };

    /// <summary>Drops the job's queued chunks, signals its running ones, and kills workers that ignore the signal past the grace period.</summary>
    private void CancelRunning(PoolJob job)
    {
        var targets = new List<(PoolWorker Worker, long[] Calls)>();
        lock (_lock)
        {
            for (var node = _queue.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Job == job) _queue.Remove(node);
                node = next;
            }
            foreach (var w in _workers)
            {
                if (w is null || w.Gone) continue;
                var calls = w.InFlight.Where(c => c.Job == job).Select(c => c.CallId).ToArray();
                if (calls.Length > 0) targets.Add((w, calls));
            }
        }
        if (targets.Count == 0) return;
        foreach (var (w, calls) in targets)
            w.SendCancel(calls);
        _ = Task.Delay(_options.CancellationGracePeriod).ContinueWith(_ =>
        {
            List<PoolWorker> kill = [];
            lock (_lock)
            {
                foreach (var (w, calls) in targets)
                {
                    if (w.Gone || w.KillReason != KillReason.None || !calls.Contains(w.Status.Read().CallId)) continue;
                    w.KillReason = KillReason.Cancelled;
                    kill.Add(w);
                }
            }
            foreach (var w in kill) w.Child?.Kill();
        }, TaskScheduler.Default);
    }

    private static long MemoryOf(int pid)
    {
        try
        {
            // /proc/PID/statm: size resident shared ... in pages.
            var fields = File.ReadAllText($"/proc/{pid}/statm").Split(' ');
            return long.Parse(fields[1]) * Environment.SystemPageSize;
        }
        catch (Exception) { return 0; }
    }

    internal void Log(Exception e, string message, params object?[] args)
    {
#pragma warning disable CA2254 // the template is a constant at every call site
        _logger.LogError(e, message, args);
#pragma warning restore CA2254
    }

    private static void ExceptionDispatch(Exception e) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
}

/// <summary>Jobs whose completion can be awaited (to release their cancellation registration).</summary>
internal interface IHasTask
{
    Task Completion { get; }
}
