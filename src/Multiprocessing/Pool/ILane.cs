namespace Multiprocessing;

/// <summary>
/// Where a pool's calls run: the seam under the scheduler. The scheduler (<see cref="ProcessPool"/>) decides
/// which chunks go to which lane and in what order, sizes each lane's window, requeues what a dead lane had not
/// begun, fails what it was running and assembles results; a lane only carries calls to whatever runs them and
/// reports back through the <see cref="ILaneEvents"/> it was made with. A local worker process is one lane
/// (<see cref="WorkerLane"/>); an in-memory lane drives the scheduler in tests; a cluster node can be another.
/// </summary>
internal interface ILane
{
    /// <summary>A name for logs and messages, unique within the pool (e.g. <c>Pool1-Worker3</c>).</summary>
    string Name { get; }

    /// <summary>The process that runs the calls, for messages; 0 until there is one.</summary>
    int Pid { get; }

    /// <summary>
    /// Starts the lane and serves it until it ends, on the thread the scheduler gave it. Reports, in order:
    /// <see cref="ILaneEvents.Started"/> (or <see cref="ILaneEvents.FailedToStart"/>, and nothing after it),
    /// <see cref="ILaneEvents.Ready"/>, answers, and last <see cref="ILaneEvents.Exited"/>, exactly once.
    /// </summary>
    void Run();

    /// <summary>
    /// Sends calls, to be run in this order, and an exit request after them when <paramref name="thenExit"/>.
    /// One sender at a time (the scheduler holds the lane's send lock); may block while the lane is full.
    /// </summary>
    void Send(IReadOnlyList<Chunk> chunks, bool thenExit);

    /// <summary>True while function drops are waiting to go out with the next <see cref="Send"/>.</summary>
    bool HasForgets { get; }

    /// <summary>Lets the lane drop a finished job's function; it goes out with the next <see cref="Send"/>.</summary>
    void Forget(int functionId);

    /// <summary>Signals the cancellation token of these calls, running or not yet begun; never blocked behind calls.</summary>
    void Cancel(IReadOnlyCollection<long> callIds);

    /// <summary>Ends the lane at once (what it runs is lost); it then reports <see cref="ILaneEvents.Exited"/>.</summary>
    void Kill();

    /// <summary>The call running now (0 for none) and since when, in <see cref="System.Diagnostics.Stopwatch"/> ticks.</summary>
    (long CallId, long Since) Running { get; }

    /// <summary>
    /// Whether the user's code of call <paramref name="callId"/> had begun (a death before that is not the call's doing).
    /// Asked for every call the lane held when it ended: a lane that runs one call at a time says true at most for the
    /// running one; one that runs several at once (a cluster node) says true for each that may have begun, and none of
    /// those is run again elsewhere.
    /// </summary>
    bool UserCodeStarted(long callId);

    /// <summary>Bytes the lane's process holds in memory now, or null when unknown.</summary>
    long? MemoryInUse();

    /// <summary>The exception for work lost when the lane ended with <paramref name="status"/>: <paramref name="message"/>, plus what the lane knows (its exit code, signal, last lines of standard error).</summary>
    WorkerCrashedException Crashed(string message, ExitStatus status);
}

/// <summary>What a lane tells the scheduler. Each lane gets its own; calls come from the lane's threads.</summary>
internal interface ILaneEvents
{
    /// <summary>The lane's process exists; false when the pool stopped meanwhile (the lane then kills it and reports its exit).</summary>
    bool Started();

    /// <summary>The lane could not start (nothing else follows).</summary>
    void FailedToStart(Exception error);

    /// <summary>The lane ran the pool's initializer and takes calls.</summary>
    void Ready();

    /// <summary>The pool's initializer threw in the lane.</summary>
    void InitializerFailed(Exception error);

    /// <summary>
    /// A call ended: <paramref name="results"/> on success, else <paramref name="error"/>. <paramref name="refill"/> is
    /// false while more answers are already waiting, so the lane is refilled once, after the last of them.
    /// </summary>
    void CallDone(long callId, long elapsedTicks, ReadOnlyMemory<byte> results, Exception? error, bool refill);

    /// <summary>The lane broke in a way the scheduler should log (a corrupt answer); it is being killed.</summary>
    void Faulted(Exception error);

    /// <summary>The lane ended; whatever it held and had not answered is the scheduler's to requeue or fail.</summary>
    void Exited(ExitStatus status);
}

/// <summary>Makes a lane for the scheduler. <paramref name="replacing"/> is true when it replaces one that ended.</summary>
internal delegate ILane LaneFactory(string name, ILaneEvents events, bool replacing);
