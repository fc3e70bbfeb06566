namespace Multiprocessing;

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
