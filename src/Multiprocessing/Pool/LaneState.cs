namespace Multiprocessing;

/// <summary>Why the pool ended a lane on purpose; decides how the chunk it was running fails.</summary>
internal enum KillReason { None, Timeout, Cancelled, Terminated }

/// <summary>
/// The scheduler's record of one lane: the chunks it holds in the order they were sent (a lane runs them in
/// that order, so the first not yet answered is the one running and the rest have not begun), where it is in
/// its life, and the writer thread that fills it. It hears the lane's events and hands them to the pool.
/// </summary>
internal sealed class LaneState : ILaneEvents
{
    private readonly ProcessPool _pool;
    private readonly SemaphoreSlim _dispatchSignal = new(0);
    private int _dispatchRequested;
    private volatile bool _stopWriting;

    public LaneState(ProcessPool pool, int slot, string name, LaneFactory factory, bool replacing)
    {
        _pool = pool;
        Slot = slot;
        Lane = factory(name, this, replacing);
    }

    public int Slot { get; }
    public ILane Lane { get; }

    /// <summary>Guards sending to the lane; taken before the pool's lock, never after it.</summary>
    public Lock SendLock { get; } = new();

    // Guarded by the pool's lock.
    public Queue<Chunk> InFlight { get; } = new();
    public bool Ready { get; set; }
    public bool Retiring { get; set; }
    public bool ExitSent { get; set; }
    public bool Gone { get; set; }
    public int Assigned { get; set; }
    public KillReason KillReason { get; set; }

    /// <summary>Lets the lane drop a finished job's function with its next batch.</summary>
    public void Forget(int functionId)
    {
        Lane.Forget(functionId);
        RequestDispatch();
    }

    /// <summary>Asks the writer thread to refill the lane; cheap, and safe on any thread (a lane's reader included).</summary>
    public void RequestDispatch()
    {
        if (Interlocked.Exchange(ref _dispatchRequested, 1) == 0) _dispatchSignal.Release();
    }

    /// <summary>
    /// Starts the writer thread: it sends whatever the pool has for this lane whenever asked, until the lane is
    /// gone. Sending may block on a full lane, so it never runs on a lane's reader thread.
    /// </summary>
    private void StartWriting() =>
        new Thread(() =>
        {
            while (true)
            {
                _dispatchSignal.Wait();
                if (_stopWriting) return;
                Volatile.Write(ref _dispatchRequested, 0);
                _pool.Dispatch(this);
            }
        }) { IsBackground = true, Name = $"Multiprocessing {Lane.Name} writer" }.Start();

    private void StopWriting()
    {
        _stopWriting = true;
        _dispatchSignal.Release();
    }

    bool ILaneEvents.Started()
    {
        if (!_pool.OnLaneStarted(this)) return false;
        StartWriting();
        return true;
    }

    void ILaneEvents.FailedToStart(Exception error) => _pool.OnLaneFailedToStart(this, error);

    void ILaneEvents.Ready() => _pool.OnLaneReady(this);

    void ILaneEvents.InitializerFailed(Exception error) => _pool.OnInitializerFailed(this, error);

    void ILaneEvents.CallDone(long callId, long elapsedTicks, ReadOnlyMemory<byte> results, Exception? error, bool refill) =>
        _pool.OnCallDone(this, callId, elapsedTicks, results, error, refill);

    void ILaneEvents.Faulted(Exception error) => _pool.OnLaneFaulted(this, error);

    void ILaneEvents.Exited(ExitStatus status)
    {
        StopWriting();
        _pool.OnLaneExited(this, status);
    }
}
