namespace Multiprocessing;

/// <summary>
/// A chunk serialized elsewhere (by a cluster's driver) and run here as it came: its function's definition and its
/// items' bytes travel untouched to a worker, and the worker's result bytes go back untouched, so this process
/// needs none of the user's types to pass them on.
/// </summary>
internal sealed class ForwardedJob(ShippedFunction function, ISerializer serializer) : PoolJob(function, serializer), IHasTask
{
    private readonly TaskCompletionSource<byte[]> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<byte[]> Task => _done.Task;

    // One job per chunk the driver sent: the chunks of one driver's job share the function, and its timing.
    protected override ChunkTiming Timing => Function.Timing;
    Task IHasTask.Completion => _done.Task;

    // The bytes belong to the lane's receive buffer: copied before the call returns.
    public override void OnResult(Chunk chunk, ReadOnlyMemory<byte> results)
    {
        if (TryFinish()) _done.TrySetResult(results.ToArray());
    }

    public override void OnFailure(Chunk chunk, Exception error) => Abort(error);

    public override void Abort(Exception error)
    {
        if (TryFinish()) Fault(_done, error);
    }
}
