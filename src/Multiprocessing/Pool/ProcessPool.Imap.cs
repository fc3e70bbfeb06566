using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Multiprocessing;

// Imap and ImapUnordered: lazy inputs, results as a stream.
public sealed partial class ProcessPool
{
    /// <summary>
    /// A lazy, ordered Map: results come back in input order as they are ready. The input is read
    /// lazily with a bounded read-ahead, so an endless sequence with a bounded consumer works.
    /// On a failure, the results before it are yielded and then the failure is thrown.
    /// </summary>
    public IEnumerable<TResult> Imap<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1) =>
        Stream<T, TResult>(func, items, chunkSize, ordered: true);

    /// <summary>Like <see cref="Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int)"/> but yields results in the order they complete.</summary>
    public IEnumerable<TResult> ImapUnordered<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1) =>
        Stream<T, TResult>(func, items, chunkSize, ordered: false);

    /// <summary>The asynchronous <see cref="Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int)"/>.</summary>
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) =>
        StreamAsync<T, TResult>(func, items, chunkSize, ordered: true, cancellationToken);

    /// <summary>The asynchronous <see cref="ImapUnordered{T, TResult}(Func{T, TResult}, IEnumerable{T}, int)"/>.</summary>
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) =>
        StreamAsync<T, TResult>(func, items, chunkSize, ordered: false, cancellationToken);

    private IEnumerable<TResult> Stream<T, TResult>(Delegate func, IEnumerable<T> items, int chunkSize, bool ordered)
    {
        var (job, feeder) = StartStream<T, TResult>(func, items, chunkSize, ordered);
        return Iterate();

        IEnumerable<TResult> Iterate()
        {
            try
            {
                while (true)
                {
                    var results = NextResults(job, feeder, out var finished);
                    if (finished) yield break;
                    if (results is null) job.WaitForOutcome();
                    else foreach (var r in results) yield return r;
                }
            }
            finally
            {
                feeder.Dispose();
                job.Stop();
                CancelRunning(job);
            }
        }
    }

    private async IAsyncEnumerable<TResult> StreamAsync<T, TResult>(Delegate func, IEnumerable<T> items, int chunkSize, bool ordered,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (job, feeder) = StartStream<T, TResult>(func, items, chunkSize, ordered);
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var results = NextResults(job, feeder, out var finished);
                if (finished) yield break;
                if (results is null) await job.WaitForOutcomeAsync(cancellationToken).ConfigureAwait(false);
                else foreach (var r in results) yield return r;
            }
        }
        finally
        {
            feeder.Dispose();
            job.Stop();
            CancelRunning(job);
        }
    }

    /// <summary>One step of an Imap loop: feed the input, then the next chunk's results, null to wait, or finished; throws a failure that is due.</summary>
    private static TResult[]? NextResults<T, TResult>(StreamJob<TResult> job, StreamFeeder<T, TResult> feeder, out bool finished)
    {
        var more = feeder.TopUp();
        finished = false;
        if (job.TryTake(out var results, out var error))
        {
            if (error is not null) ExceptionDispatch(error);
            return results;
        }
        finished = !more && job.Consumed == job.Submitted;
        return null;
    }

    private (StreamJob<TResult> Job, StreamFeeder<T, TResult> Feeder) StartStream<T, TResult>(Delegate func, IEnumerable<T> items, int chunkSize, bool ordered)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentNullException.ThrowIfNull(items);
        if (chunkSize < 1) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "chunkSize must be at least 1.");
        ThrowIfNotAccepting();
        var job = Forgettable(new StreamJob<TResult>(Ship(func, cacheable: true), _serializer, ordered));
        // Enough chunks ahead to keep every worker's window full, but bounded so an endless input is fine.
        var readAhead = Processes * Math.Max(4, 256 / chunkSize);
        return (job, new StreamFeeder<T, TResult>(this, job, items, chunkSize, readAhead));
    }

    /// <summary>Reads the input on the consumer's thread, a chunk at a time, only as far ahead as allowed.</summary>
    private sealed class StreamFeeder<T, TResult>(ProcessPool pool, StreamJob<TResult> job, IEnumerable<T> items, int chunkSize, int readAhead) : IDisposable
    {
        private IEnumerator<T>? _input = items.GetEnumerator();
        private int _offset;

        /// <summary>Submits chunks up to the read-ahead bound; false once the input is exhausted.</summary>
        public bool TopUp()
        {
            if (_input is null) return false;
            List<Chunk>? batch = null;
            var items = 0;
            while (job.Submitted - job.Consumed < readAhead)
            {
                var buffer = new List<T>(chunkSize);
                while (buffer.Count < chunkSize && _input.MoveNext()) buffer.Add(_input.Current);
                if (buffer.Count > 0)
                {
                    (batch ??= []).Add(new Chunk(job, job.Submitted, _offset, buffer.Count, pool.SerializeItems(buffer.ToArray(), "Imap", _offset)));
                    job.Submitted++;
                    _offset += buffer.Count;
                    items += buffer.Count;
                }
                if (buffer.Count < chunkSize)
                {
                    Dispose();
                    break;
                }
            }
            if (batch is not null) pool.Submit(job, batch, items);
            return _input is not null;
        }

        public void Dispose()
        {
            _input?.Dispose();
            _input = null;
        }
    }
}
