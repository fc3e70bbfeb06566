using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Multiprocessing;

/// <summary>
/// A pool of worker processes, like Python's <c>multiprocessing.Pool</c> and
/// <c>ProcessPoolExecutor</c>, that never hangs: a worker that crashes, overflows its stack, is
/// killed or runs past <see cref="ProcessPoolOptions.TaskTimeout"/> fails exactly the task it was
/// running (with <see cref="WorkerCrashedException"/> or <see cref="TimeoutException"/>), is
/// replaced, and the pool goes on. Disposing it terminates the workers, as Python's <c>with Pool()</c>;
/// work still pending then fails with <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed partial class ProcessPool : IProcessPool
{
    private static int _poolCounter;

    private readonly ProcessPoolOptions _options;
    private readonly ISerializer _serializer;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly LinkedList<Chunk> _queue = new();
    // Replaced (never changed in place) when lanes are added, so a reader's copy stays whole; written under _lock.
    private volatile LaneState?[] _lanes;
    private readonly LaneFactory _newLane;
    private readonly PoolMetrics _metrics;
    private readonly ConcurrentDictionary<(MethodInfo, Type), ShippedFunction> _statelessFunctions = new();
    private readonly ConcurrentDictionary<string, ShippedFunction> _forwardedFunctions = new();
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
    public ProcessPool(ProcessPoolOptions options) : this(options, lanes: null) { }

    /// <summary>A pool whose calls run in the lanes <paramref name="lanes"/> makes (null: worker processes on this machine).</summary>
    internal ProcessPool(ProcessPoolOptions options, LaneFactory? lanes)
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
        _metrics = PoolMetrics.For(options.MeterFactory);
        _lanes = new LaneState?[options.Processes ?? Environment.ProcessorCount];
        _newLane = lanes ?? ((name, events, replacing) => new WorkerLane(name, events, options.Initializer, _serializer, replacing));
        if (options.Initializer is not null)
        {
            // Refuse an initializer that cannot travel now, not in every worker.
            _ = ShippedFunction.Encode(options.Initializer, _serializer);
        }
        for (var slot = 0; slot < _lanes.Length; slot++) StartWorker(slot, replacing: false);
        if (options.TaskTimeout is { } timeout)
        {
            var period = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 10, 250));
            _timeoutTimer = new Timer(_ => EnforceTimeouts(), null, period, period);
        }
    }

    /// <summary>The number of worker processes.</summary>
    public int Processes => _lanes.Length;

    /// <summary>
    /// Adds <paramref name="count"/> lanes, made by the pool's lane factory, to a running pool (a cluster node that
    /// joined); false when the pool no longer takes work.
    /// </summary>
    internal bool AddLanes(int count)
    {
        int first;
        lock (_lock)
        {
            if (_state != State.Running) return false;
            first = _lanes.Length;
            var grown = new LaneState?[first + count];
            Array.Copy(_lanes, grown, first);
            _lanes = grown;
        }
        for (var slot = first; slot < first + count; slot++) StartWorker(slot, replacing: false);
        return true;
    }
}

/// <summary>Jobs whose completion can be awaited (to release their cancellation registration).</summary>
internal interface IHasTask
{
    Task Completion { get; }
}
