using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Multiprocessing;

/// <summary>Settings of a <see cref="ProcessPool"/>; every one is optional.</summary>
public sealed record ProcessPoolOptions
{
    /// <summary>How many worker processes; defaults to <see cref="Environment.ProcessorCount"/>.</summary>
    public int? Processes { get; init; }

    /// <summary>
    /// Runs once in each worker before its first task (attach shared memory, load a model, set
    /// process-wide state). If it throws, the pool fails fast with that exception instead of respawning forever.
    /// </summary>
    public Action? Initializer { get; init; }

    /// <summary>How many tasks (chunks) a worker runs before it is replaced by a fresh one; null for no limit.</summary>
    public int? MaxTasksPerChild { get; init; }

    /// <summary>
    /// The longest a task (one chunk) may run. Past it the worker is killed and replaced, that task
    /// fails with <see cref="TimeoutException"/>, and the other tasks go on. Null for no limit.
    /// </summary>
    public TimeSpan? TaskTimeout { get; init; }

    /// <summary>A worker whose resident memory exceeds this many bytes after a task is replaced. Null for no limit.</summary>
    public long? MaxMemoryPerChild { get; init; }

    /// <summary>After a cancellation, how long a running task may take to observe <see cref="WorkerProcess.CancellationToken"/> before its worker is killed.</summary>
    public TimeSpan CancellationGracePeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long the pool may go without any worker able to start (each one killed from outside before it is
    /// ready, say by an out-of-memory killer) before queued and new work fails with a
    /// <see cref="WorkerCrashedException"/> that says why. The pool keeps starting workers, with growing
    /// pauses, and accepts work again as soon as one is ready. Defaults to 30 seconds.
    /// </summary>
    public TimeSpan WorkerStartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The serializer for arguments and results; defaults to <see cref="MessagePackObjectSerializer"/>.</summary>
    public ISerializer? Serializer { get; init; }

    /// <summary>Receives worker start, exit and crash events.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>
    /// Makes the meter ("Multiprocessing") the pool's counters are recorded on: pass the host's
    /// <see cref="IMeterFactory"/> (from dependency injection) so its metrics pipeline sees exactly its pools.
    /// Null records on one meter shared by the whole process.
    /// </summary>
    public IMeterFactory? MeterFactory { get; init; }

    /// <summary>
    /// Where the calls go when that is another machine (a cluster's node): the library's objects that live on this
    /// machine then refuse to travel at the call (see <see cref="MachineBoundary"/>). Null for this machine's workers.
    /// </summary>
    internal string? Destination { get; init; }

    /// <summary>
    /// How many times a task whose lane was lost while it ran (a cluster node that died) is run again on another lane
    /// before it fails, as Ray's <c>max_retries</c>: 0 (the default) runs each task at most once.
    /// </summary>
    internal int MaxRetries { get; init; }

    /// <summary>
    /// How much work a lane should hold queued to hide its round trip (see <see cref="PoolJob.Window"/>): 1 ms for this
    /// machine's workers; more for a cluster's nodes, whose round trip goes through the network and busier processes.
    /// </summary>
    internal TimeSpan LaneLatency { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>The fewest calls a lane holds while work is queued: 2 for a node's own pool, so its worker finds the next call waiting when one ends.</summary>
    internal int MinWindow { get; init; } = 1;

    /// <summary>
    /// As <see cref="MinWindow"/>, but only while the queue holds that many calls for every lane: at the end of a job
    /// lanes take one call at a time again, so none waits with a call queued behind its running one while another lane
    /// sits idle (a cluster's node lanes: 2).
    /// </summary>
    internal int MinWindowWhileQueued { get; init; } = 1;
}

/// <summary>How far a <see cref="ProcessPool.Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?)"/> has come.</summary>
/// <param name="Completed">Items whose results have arrived.</param>
/// <param name="Total">Items in the call.</param>
public readonly record struct MapProgress(int Completed, int Total);
