using System.Buffers;
using MessagePack;

namespace Multiprocessing;

/// <summary>A function shipped once per job: its encoded definition and the id workers cache it under (0: not cached).</summary>
internal sealed class ShippedFunction(int id, byte[] definition, bool shared = false)
{
    public int Id { get; } = id;

    /// <summary>A stateless function cached for the pool's life, as opposed to one shipped for a single job.</summary>
    public bool Shared { get; } = shared;
    public byte[] Definition { get; } = definition;

    public static byte[] Encode(Delegate function, ISerializer serializer)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        DelegateShipper.Write(ref w, function, serializer);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}

/// <summary>A slice of a job's items, serialized once, sent to one worker as one call.</summary>
internal sealed class Chunk(PoolJob job, int index, int offset, int count, ReadOnlyMemory<byte> payload)
{
    public PoolJob Job { get; } = job;
    public int Index { get; } = index;
    public int Offset { get; } = offset;
    public int Count { get; } = count;
    public ReadOnlyMemory<byte> Payload { get; } = payload;
    public long CallId { get; set; }

    /// <summary>How many workers died after taking this chunk and before its code began (guarded by the pool's lock).</summary>
    public int DiedBeforeStart { get; set; }

    public static ReadOnlyMemory<byte> Serialize<TItem>(ISerializer serializer, TItem[] items)
    {
        var buffer = new ArrayBufferWriter<byte>(64 + items.Length * 4);
        try
        {
            serializer.Serialize(buffer, items);
        }
        catch (Exception e) when (e is not SerializationException)
        {
            throw new SerializationException(
                $"An argument of type {typeof(TItem).FullName} cannot be serialized to travel to a worker process: {e.Message} " +
                "Pass plain data (numbers, strings, records, arrays, lists) or the library's shared objects.", e);
        }
        return buffer.WrittenMemory;
    }
}

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
    private double _averageTicks = -1;

    /// <summary>
    /// How many of this job's chunks a worker may hold in flight: enough that it never waits a round trip for
    /// work when chunks are short, one when chunks are long so work balances across workers, two until the
    /// first result tells. Caller holds the pool's lock.
    /// </summary>
    public int Window
    {
        get
        {
            if (_averageTicks < 0) return 2;
            var roundTrip = System.Diagnostics.Stopwatch.Frequency / 1000.0; // ~1 ms of work covers a round trip many times over
            if (_averageTicks >= roundTrip) return 1;
            return (int)Math.Clamp(roundTrip / Math.Max(_averageTicks, 1) + 1, 2, 256);
        }
    }

    /// <summary>Folds one chunk's run time into the job's average. Caller holds the pool's lock.</summary>
    public void RecordElapsed(long ticks) => _averageTicks = _averageTicks < 0 ? ticks : _averageTicks * 0.8 + ticks * 0.2;

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
        var values = Serializer.Deserialize<TResult[]>(results);
        if (values.Length != chunk.Count)
            throw new InvalidDataException($"A worker returned {values.Length} results for a chunk of {chunk.Count} items.");
        return values;
    }
}

/// <summary>Map and Starmap: every chunk enqueued at once, results placed by offset, the first failure ends the call.</summary>
internal sealed class MapJob<TResult> : PoolJob, IHasTask
{
    private readonly TResult[] _results;
    private readonly IProgress<MapProgress>? _progress;
    private readonly TaskCompletionSource<TResult[]> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _remainingChunks;
    private int _completedItems;

    public MapJob(ShippedFunction function, ISerializer serializer, int items, int chunks, IProgress<MapProgress>? progress) : base(function, serializer)
    {
        _results = new TResult[items];
        _remainingChunks = chunks;
        _progress = progress;
        if (chunks == 0) Complete();
    }

    public Task<TResult[]> Task => _done.Task;
    Task IHasTask.Completion => _done.Task;

    public override void OnResult(Chunk chunk, ReadOnlyMemory<byte> results)
    {
        if (Finished) return;
        TResult[] values;
        try { values = ReadResults<TResult>(chunk, results); }
        catch (Exception e) { OnFailure(chunk, e); return; }
        values.CopyTo(_results, chunk.Offset);
        var done = Interlocked.Add(ref _completedItems, chunk.Count);
        try
        {
            _progress?.Report(new MapProgress(done, _results.Length));
        }
        catch (Exception)
        {
            // A progress callback that throws must not take a worker's reader thread (and the results) with it.
        }
        if (Interlocked.Decrement(ref _remainingChunks) == 0) Complete();
    }

    private void Complete()
    {
        if (TryFinish()) _done.TrySetResult(_results);
    }

    public override void OnFailure(Chunk chunk, Exception error) => Abort(error);

    public override void Abort(Exception error)
    {
        if (TryFinish()) Fault(_done, error);
    }
}

/// <summary>Apply: one call of the function with one argument tuple.</summary>
internal sealed class ApplyJob<TResult> : PoolJob, IHasTask
{
    private readonly TaskCompletionSource<TResult> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ApplyJob(ShippedFunction function, ISerializer serializer) : base(function, serializer) { }

    public Task<TResult> Task => _done.Task;
    Task IHasTask.Completion => _done.Task;

    public override void OnResult(Chunk chunk, ReadOnlyMemory<byte> results)
    {
        if (Finished) return;
        TResult value;
        try { value = ReadResults<TResult>(chunk, results)[0]; }
        catch (Exception e) { Abort(e); return; }
        if (TryFinish()) _done.TrySetResult(value);
    }

    public override void OnFailure(Chunk chunk, Exception error) => Abort(error);

    public override void Abort(Exception error)
    {
        if (TryFinish()) Fault(_done, error);
    }
}

/// <summary>
/// Imap and ImapUnordered: chunks are fed lazily by the consumer (bounded read-ahead), outcomes
/// are kept until the consumer takes them, in input order or in completion order.
/// </summary>
internal sealed class StreamJob<TResult> : PoolJob
{
    private readonly bool _ordered;
    private readonly Dictionary<int, TResult[]> _byIndex = [];
    private readonly Queue<TResult[]> _byArrival = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Lock _lock = new();
    private (int Index, Exception Error)? _failure;
    private int _nextIndex;

    public StreamJob(ShippedFunction function, ISerializer serializer, bool ordered) : base(function, serializer) => _ordered = ordered;

    /// <summary>Chunks handed to the pool and chunks whose outcome the consumer has taken.</summary>
    public int Submitted { get; set; }
    public int Consumed { get; private set; }

    public override void OnResult(Chunk chunk, ReadOnlyMemory<byte> results)
    {
        if (Finished) return;
        TResult[] values;
        try { values = ReadResults<TResult>(chunk, results); }
        catch (Exception e) { OnFailure(chunk, e); return; }
        lock (_lock)
        {
            if (_ordered) _byIndex[chunk.Index] = values;
            else _byArrival.Enqueue(values);
        }
        _signal.Release();
    }

    public override void OnFailure(Chunk chunk, Exception error)
    {
        lock (_lock)
        {
            // In order, the earliest failure wins; results before it are still yielded.
            if (_failure is { } f && (!_ordered || f.Index <= chunk.Index)) return;
            _failure = (chunk.Index, error);
        }
        _signal.Release();
    }

    public override void Abort(Exception error)
    {
        lock (_lock)
        {
            if (_failure is null || _failure.Value.Index >= 0) _failure = (-1, error);
        }
        TryFinish();
        _signal.Release();
    }

    /// <summary>Marks the job done (consumer stopped early or ran to the end): queued chunks are dropped.</summary>
    public void Stop() => TryFinish();

    /// <summary>Takes the next outcome if there is one: results, or a failure to throw.</summary>
    public bool TryTake(out TResult[]? results, out Exception? error)
    {
        lock (_lock)
        {
            error = null;
            results = null;
            if (_failure is { Index: -1 } aborted) { error = aborted.Error; return true; }
            if (_ordered && _byIndex.Remove(_nextIndex, out results))
            {
                _nextIndex++;
                Consumed++;
                return true;
            }
            if (!_ordered && _byArrival.TryDequeue(out results))
            {
                Consumed++;
                return true;
            }
            if (_failure is { } f && (!_ordered || f.Index == _nextIndex)) { error = f.Error; return true; }
            return false;
        }
    }

    public void WaitForOutcome() => _signal.Wait();

    public Task WaitForOutcomeAsync(CancellationToken cancellationToken) => _signal.WaitAsync(cancellationToken);
}
