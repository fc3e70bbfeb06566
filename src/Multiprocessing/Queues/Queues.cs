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
/// </remarks>
/// <typeparam name="T">The item type; anything the default serializer handles (records, classes, tuples, arrays...).</typeparam>
/// <example><code>
/// using var results = new ProcessQueue&lt;(int Task, long Value)&gt;();
/// var w = new WorkerProcess(() =&gt; results.Put((1, 42L)));
/// w.Start();
/// var (task, value) = results.Get();
/// </code></example>
public class ProcessQueue<T> : IDisposable
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
        GC.SuppressFinalize(this);
    }

    /// <inheritdoc />
    public override string ToString() => $"{GetType().Name.Split('`')[0]}<{typeof(T).Name}>('{Name}', count={Count}{(MaxSize > 0 ? $", maxSize={MaxSize}" : "")})";

    private protected virtual bool CountsUnfinished => false;

    private bool PutCore(T item, Deadline deadline, CancellationToken token)
    {
        try
        {
            return Ring.Put(item, CountsUnfinished, deadline, token);
        }
        catch (MessagePack.MessagePackSerializationException e)
        {
            throw new SerializationException($"An item of type {item?.GetType().Name ?? typeof(T).Name} cannot be put into the queue: {e.Message}", e);
        }
    }
}

/// <summary>
/// A <see cref="ProcessQueue{T}"/> that counts unfinished items, like Python's <c>multiprocessing.JoinableQueue</c>:
/// each <see cref="ProcessQueue{T}.Put"/> adds one, each <see cref="TaskDone"/> removes one, and <see cref="Join()"/>
/// waits until the count is back to zero (every item put was taken and processed).
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
public sealed class JoinableProcessQueue<T> : ProcessQueue<T>
{
    /// <summary>Creates a joinable queue (see <see cref="ProcessQueue{T}(int, int)"/>).</summary>
    public JoinableProcessQueue(int maxSize = 0, int ringBytes = DefaultRingBytes) : base(SharedRing.Create(ringBytes, maxSize, "jq")) { }

    private JoinableProcessQueue(SharedRing ring) : base(ring) { }

    internal static new JoinableProcessQueue<T> FromRing(SharedRing ring) => new(ring);

    private protected override bool CountsUnfinished => true;

    /// <summary>The number of items put and not yet marked done.</summary>
    public int UnfinishedTasks => Ring.Unfinished;

    /// <summary>Marks one item taken from the queue as processed.</summary>
    /// <exception cref="InvalidOperationException">Called more times than items were put.</exception>
    public void TaskDone() => Ring.TaskDone();

    /// <summary>Waits until every item put has been marked done with <see cref="TaskDone"/>.</summary>
    public void Join() => Ring.Join(Deadline.Infinite, CancellationToken.None);

    /// <summary>Waits at most <paramref name="timeout"/> for every item to be marked done; false when some remain.</summary>
    public bool Join(TimeSpan timeout) => Ring.Join(Deadline.After(timeout), CancellationToken.None);

    /// <summary>Waits for every item to be marked done without blocking a thread-pool thread.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public Task JoinAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled(cancellationToken);
        if (Ring.Unfinished == 0) return Task.CompletedTask;
        return Futex.OnDedicatedThread(() => Ring.Join(Deadline.Infinite, cancellationToken));
    }
}

/// <summary>
/// A consumer waited on an empty queue whose producers have all died (killed or crashed; a producer that exits
/// normally or disposes its handle is not counted) without closing it. Reported once per death: waiting again
/// waits for new producers.
/// </summary>
public sealed class ProducerDiedException : MultiprocessingException
{
    /// <summary>Creates the exception.</summary>
    public ProducerDiedException(string message, int processId) : base(message) => ProcessId = processId;

    /// <summary>The process id of a producer that died.</summary>
    public int ProcessId { get; }
}
