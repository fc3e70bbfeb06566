using System.Diagnostics;

namespace Multiprocessing;

// Map and Starmap: whole inputs, results in input order.
public sealed partial class ProcessPool
{
    /// <summary>
    /// Applies <paramref name="func"/> to every item in worker processes and returns the results in
    /// input order. The input is split into chunks of <paramref name="chunkSize"/> items (default:
    /// items / (4 x workers), rounded up, as in Python). Throws the first failure.
    /// </summary>
    public TResult[] Map<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize = null) =>
        MapAsync(func, items, chunkSize).GetAwaiter().GetResult();

    /// <summary>As <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?)"/>, reporting progress as chunks complete.</summary>
    public TResult[] Map<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress) =>
        MapAsync(func, items, chunkSize, progress, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// The asynchronous <see cref="Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?)"/>. Cancelling
    /// drops the queued chunks at once and cancels the running ones (see <see cref="ProcessPoolOptions.CancellationGracePeriod"/>).
    /// </summary>
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize = null, CancellationToken cancellationToken = default) =>
        MapAsync(func, items, chunkSize, null, cancellationToken);

    /// <summary>The asynchronous Map, reporting progress as chunks complete.</summary>
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken) =>
        MapCore<T, TResult>(func, items, chunkSize, progress, cancellationToken);

    /// <summary>Like Python's <c>starmap</c>: each item is a tuple of the function's two arguments.</summary>
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> func, IEnumerable<(T1, T2)> items, int? chunkSize = null) =>
        MapCore<(T1, T2), TResult>(func, items, chunkSize, null, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Like Python's <c>starmap</c>: each item is a tuple of the function's three arguments.</summary>
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null) =>
        MapCore<(T1, T2, T3), TResult>(func, items, chunkSize, null, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>The asynchronous two-argument <c>starmap</c>.</summary>
    public Task<TResult[]> StarmapAsync<T1, T2, TResult>(Func<T1, T2, TResult> func, IEnumerable<(T1, T2)> items, int? chunkSize = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2), TResult>(func, items, chunkSize, null, cancellationToken);

    /// <summary>The asynchronous three-argument <c>starmap</c>.</summary>
    public Task<TResult[]> StarmapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null, CancellationToken cancellationToken = default) =>
        MapCore<(T1, T2, T3), TResult>(func, items, chunkSize, null, cancellationToken);

    private Task<TResult[]> MapCore<TItem, TResult>(Delegate func, IEnumerable<TItem> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentNullException.ThrowIfNull(items);
        if (chunkSize is < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunkSize must be at least 1 (or null for Python's default).");
        ThrowIfNotAccepting();
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<TResult[]>(cancellationToken);

        var all = items as TItem[] ?? items.ToArray();
        var size = chunkSize ?? Math.Max(1, (all.Length + 4 * Processes - 1) / (4 * Processes));
        var chunkCount = (all.Length + size - 1) / size;
        var job = Forgettable(new MapJob<TResult>(Ship(func, cacheable: true), _serializer, all.Length, chunkCount, progress));
        // Chunks are handed over in growing batches, so workers start on the first ones while the
        // rest are still being serialized (this matters for many small chunks).
        var batch = new List<Chunk>();
        var batchItems = 0;
        try
        {
            for (var i = 0; i < chunkCount; i++)
            {
                var offset = i * size;
                var count = Math.Min(size, all.Length - offset);
                batch.Add(new Chunk(job, i, offset, count, SerializeItems(chunkCount == 1 ? all : all.AsSpan(offset, count).ToArray(), "Map", offset)));
                batchItems += count;
                if (batch.Count >= Math.Min(1024, 8 << Math.Min(i / 64, 7)) || i == chunkCount - 1)
                {
                    Submit(job, batch, batchItems);
                    batch = [];
                    batchItems = 0;
                }
            }
        }
        catch (Exception e)
        {
            // What was already handed over must not run on for nothing.
            job.Abort(e);
            CancelRunning(job);
            throw;
        }
        WatchCancellation(job, cancellationToken);
        return job.Task;
    }
}
