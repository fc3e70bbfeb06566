namespace Multiprocessing;

/// <summary>One call of the pool (a Map, an Imap, an Apply): how its chunks' outcomes reach the caller.</summary>
internal abstract class PoolJob
{
    private int _finished;

    protected PoolJob(ShippedFunction function, ISerializer serializer)
    {
        Function = function;
        Serializer = serializer;
    }

    public ShippedFunction Function { get; }
    protected ISerializer Serializer { get; }

    // How long this job's chunks take, learned from its own results (guarded by the pool's lock). Not carried over
    // from earlier work: after a Map of trivial items, a Map of heavy ones must not start with a window of hundreds.
    // Forwarded jobs (one per chunk a cluster's driver sends) share their function's, as the chunks of one Map do.
    private readonly ChunkTiming _timing = new();

    protected virtual ChunkTiming Timing => _timing;

    /// <summary>
    /// How many of this job's chunks a worker may hold in flight: enough that it never waits a round trip for
    /// work when chunks are short, <paramref name="least"/> when chunks are long so work balances across workers,
    /// two until the first result tells. <paramref name="latency"/>: the work that hides the lane's round trip
    /// many times over. Caller holds the pool's lock.
    /// </summary>
    public int Window(TimeSpan latency, int least)
    {
        var average = Timing.AverageTicks;
        if (average < 0) return Math.Max(2, least);
        var roundTrip = latency.TotalSeconds * System.Diagnostics.Stopwatch.Frequency;
        if (average >= roundTrip) return least;
        return (int)Math.Clamp(roundTrip / Math.Max(average, 1) + 1, Math.Max(2, least), 256);
    }

    /// <summary>Folds one chunk's run time into the job's average. Caller holds the pool's lock.</summary>
    public void RecordElapsed(long ticks) => Timing.AverageTicks = Timing.AverageTicks < 0 ? ticks : Timing.AverageTicks * 0.8 + ticks * 0.2;

    /// <summary>Completed, failed or cancelled: chunks still queued are dropped, late results ignored.</summary>
    public bool Finished => Volatile.Read(ref _finished) == 1;

    /// <summary>Runs once when the job is over (the pool uses it to let workers drop the job's function).</summary>
    public Action? WhenFinished { get; set; }

    /// <summary>Marks the job finished; true for the one caller that did it.</summary>
    protected bool TryFinish()
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0) return false;
        WhenFinished?.Invoke();
        return true;
    }

    /// <summary>A chunk's results arrived (called on a worker's reader thread).</summary>
    public abstract void OnResult(Chunk chunk, ReadOnlyMemory<byte> results);

    /// <summary>A chunk failed: the function threw, its worker crashed or was killed, or the pool stopped.</summary>
    public abstract void OnFailure(Chunk chunk, Exception error);

    /// <summary>The pool is going away or broke: fail with <paramref name="error"/> unless already finished.</summary>
    public abstract void Abort(Exception error);

    /// <summary>Completes a caller's task with a failure; a cancellation completes it as cancelled.</summary>
    protected static void Fault<T>(TaskCompletionSource<T> done, Exception error)
    {
        if (error is OperationCanceledException oce) done.TrySetCanceled(oce.CancellationToken);
        else done.TrySetException(error);
    }

    protected TResult[] ReadResults<TResult>(Chunk chunk, ReadOnlyMemory<byte> results)
    {
        TResult[] values;
        try
        {
            values = Serializer.Deserialize<TResult[]>(results);
        }
        catch (Exception e)
        {
            throw TravelErrors.CannotRead("The result", typeof(TResult), e);
        }
        if (values.Length != chunk.Count)
            throw new InvalidDataException($"A worker returned {values.Length} results for a chunk of {chunk.Count} items.");
        return values;
    }
}

/// <summary>How long chunks take, on average (in stopwatch ticks; negative until the first result). Guarded by the pool's lock.</summary>
internal sealed class ChunkTiming
{
    public double AverageTicks { get; set; } = -1;
}
