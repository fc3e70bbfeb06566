namespace Multiprocessing;

/// <summary>
/// A first-in, first-out queue between processes, like Python's <c>multiprocessing.Queue</c>: any number of
/// processes put, any number get. Items live in a ring in shared memory (no feeder thread, no pipe): a small
/// item is serialized straight into the ring, and a reader deserializes it from there. When the ring is full,
/// items spill into further shared-memory blocks, in order, so an unbounded queue never blocks a producer.
/// Captured by a worker lambda or passed as an argument, the queue arrives in the worker as the same queue.
/// </summary>
/// <remarks>
/// An item is in the queue whole or not at all: a producer killed in the middle of <see cref="Put"/> leaves
/// nothing behind and does not block anyone. A consumer waiting on an empty queue whose producers have all
/// died (crashed or killed, not exited normally) gets a <see cref="ProducerDiedException"/>, once per death.
/// <see cref="Connection.Wait"/> waits on a queue (with connections and processes) until it has an item.
/// </remarks>
/// <typeparam name="T">The item type; anything the default serializer handles (records, classes, tuples, arrays...).</typeparam>
/// <example><code>
/// using var results = new ProcessQueue&lt;(int Task, long Value)&gt;();
/// var w = new WorkerProcess(() =&gt; results.Put((1, 42L)));
/// w.Start();
/// var (task, value) = results.Get();
/// </code></example>
public class ProcessQueue<T> : IDisposable, IWaitable
{
    private protected readonly SharedRing Ring;

    /// <summary>Creates a queue.</summary>
    /// <param name="maxSize">The most items it holds before <see cref="Put"/> waits; 0 (the default) for no limit.</param>
    /// <param name="ringBytes">Bytes of the shared ring (rounded up to a power of two); larger items, or items past a full ring, spill into further blocks.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is negative, or <paramref name="ringBytes"/> is under 4096.</exception>
    public ProcessQueue(int maxSize = 0, int ringBytes = DefaultRingBytes) : this(SharedRing.Create(ringBytes, maxSize, "q")) { }

    private protected ProcessQueue(SharedRing ring) => Ring = ring;

    internal static ProcessQueue<T> FromRing(SharedRing ring) => new(ring);

    internal SharedRing SharedRing => Ring;

    /// <summary>The default size of the shared ring: 4 MiB (its pages are only used as far as items reach).</summary>
    public const int DefaultRingBytes = SharedRing.DefaultRingBytes;

    /// <summary>The most items the queue holds (0: no limit).</summary>
    public int MaxSize => Ring.MaxItems;

    /// <summary>The number of items in the queue now; approximate, as other processes change it at any moment.</summary>
    public int Count => Ring.Count;

    /// <summary>True once <see cref="Close"/> was called by any process.</summary>
    public bool IsClosed => Ring.IsClosed;

    /// <summary>The shared-memory name of the queue's ring (for diagnostics).</summary>
    public string Name => Ring.Name;

    /// <summary>Adds an item, waiting while a bounded queue is full.</summary>
    /// <exception cref="InvalidOperationException">The queue is closed.</exception>
    /// <exception cref="SerializationException">The item cannot be serialized.</exception>
    public void Put(T item) => PutCore(item, Deadline.Infinite, CancellationToken.None);

    /// <summary>Adds an item, waiting at most <paramref name="timeout"/> for room; false when the queue stayed full.</summary>
    /// <exception cref="InvalidOperationException">The queue is closed.</exception>
    public bool TryPut(T item, TimeSpan timeout) => PutCore(item, Deadline.After(timeout), CancellationToken.None);

    /// <summary>Adds an item, waiting for room without blocking a thread-pool thread.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    public ValueTask PutAsync(T item, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled(cancellationToken);
        if (MaxSize == 0 || Count < MaxSize)
        {
            // No room to wait for: the put itself only takes the producer lock briefly.
            if (PutCore(item, Deadline.After(TimeSpan.Zero), cancellationToken)) return ValueTask.CompletedTask;
        }
        return new ValueTask(Futex.OnDedicatedThread(() => PutCore(item, Deadline.Infinite, cancellationToken)));
    }

    /// <summary>Removes and returns the oldest item, waiting until there is one.</summary>
    /// <exception cref="InvalidOperationException">The queue is closed and empty.</exception>
    /// <exception cref="ProducerDiedException">The queue is empty and every process that put into it died.</exception>
    public T Get()
    {
        Ring.Take(out T item, Deadline.Infinite, CancellationToken.None, endOfStream: false);
        return item;
    }

    /// <summary>Removes the oldest item, waiting at most <paramref name="timeout"/>; false when none came.</summary>
    /// <exception cref="InvalidOperationException">The queue is closed and empty.</exception>
    /// <exception cref="ProducerDiedException">The queue is empty and every process that put into it died.</exception>
    public bool TryGet(out T item, TimeSpan timeout) => Ring.Take(out item, Deadline.After(timeout), CancellationToken.None, endOfStream: false);

    /// <summary>Removes and returns the oldest item, waiting without blocking a thread-pool thread.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting.</exception>
    /// <exception cref="InvalidOperationException">The queue is closed and empty.</exception>
    public ValueTask<T> GetAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<T>(cancellationToken);
        if (Ring.HasData && Ring.Take(out T item, Deadline.After(TimeSpan.Zero), cancellationToken, endOfStream: false)) return new(item);
        return new ValueTask<T>(Futex.OnDedicatedThread(() =>
        {
            Ring.Take(out T taken, Deadline.Infinite, cancellationToken, endOfStream: false);
            return taken;
        }));
    }

    /// <summary>
    /// Closes the queue for every process: further puts throw, and gets throw <see cref="InvalidOperationException"/>
    /// once the items already in it are taken (Python's <c>close()</c> only concerns the calling process).
    /// </summary>
    public void Close() => Ring.Close();

    /// <summary>Releases this handle; the creator's handle also removes the queue's shared memory (processes using it keep it).</summary>
    public void Dispose()
    {
        Ring.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"{GetType().Name.Split('`')[0]}<{typeof(T).Name}>('{Name}', count={Count}{(MaxSize > 0 ? $", maxSize={MaxSize}" : "")})";

    private protected virtual bool CountsUnfinished => false;

    // For Connection.Wait: ready when a get will not wait (an item, the queue closed, or every producer on record dead).
    bool IWaitable.IsReady => Ring.WaitForData(Deadline.After(TimeSpan.Zero), CancellationToken.None, endOfStream: false);

    // The ring has no event to await: the wait sleeps on its futex word, on a thread of its own; cancelling wakes it.
    Task IWaitable.WhenReadyAsync(CancellationToken cancellationToken) =>
        Futex.OnDedicatedThread(() => Ring.WaitForData(Deadline.Infinite, cancellationToken, endOfStream: false));

    private bool PutCore(T item, Deadline deadline, CancellationToken token)
    {
        return Ring.Put(item, CountsUnfinished, deadline, token, "The queue item");
    }
}
