namespace Multiprocessing;

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
