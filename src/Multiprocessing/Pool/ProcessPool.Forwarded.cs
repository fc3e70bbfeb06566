namespace Multiprocessing;

// Chunks that arrive already serialized, from a cluster's driver (see ForwardedJob).
public sealed partial class ProcessPool
{
    /// <summary>
    /// Runs <paramref name="count"/> items serialized in <paramref name="payload"/> through the function whose encoded
    /// definition is <paramref name="definition"/>, on one of this pool's workers, as one call; completes with the
    /// serialized results, or fails as a chunk fails (the function's exception, a worker's crash, a cancellation).
    /// </summary>
    /// <param name="functionKey">A key the caller keeps for the same function (null: ship it with this call only); equal keys must mean equal definitions.</param>
    /// <param name="definition">The function as <see cref="ShippedFunction.Encode"/> wrote it.</param>
    /// <param name="payload">The items as the driver's serializer wrote them (an array of argument tuples).</param>
    /// <param name="count">How many items the payload holds.</param>
    /// <param name="cancellationToken">Cancels the call: dropped if queued, signalled in the worker if running.</param>
    internal Task<byte[]> RunForwardedAsync(string? functionKey, byte[] definition, ReadOnlyMemory<byte> payload, int count, CancellationToken cancellationToken)
    {
        ThrowIfNotAccepting();
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<byte[]>(cancellationToken);
        var function = functionKey is null
            ? new ShippedFunction(0, definition)
            : _forwardedFunctions.GetOrAdd(functionKey, _ => new ShippedFunction(Interlocked.Increment(ref _nextFunctionId), definition, shared: true));
        var job = new ForwardedJob(function, _serializer);
        Submit(job, [new Chunk(job, 0, 0, count, payload)], count);
        WatchCancellation(job, cancellationToken);
        return job.Task;
    }

    /// <summary>Lets the workers drop a forwarded function once the caller's job that used it is over.</summary>
    internal void ForgetForwarded(string functionKey)
    {
        if (!_forwardedFunctions.TryRemove(functionKey, out var function)) return;
        foreach (var lane in _lanes) lane?.Forget(function.Id);
    }
}
