namespace Multiprocessing;

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
