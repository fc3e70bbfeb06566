namespace Multiprocessing;

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
    public ValueTask JoinAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled(cancellationToken);
        if (Ring.Unfinished == 0) return ValueTask.CompletedTask;
        return new(Futex.OnDedicatedThread(() => Ring.Join(Deadline.Infinite, cancellationToken)));
    }
}
