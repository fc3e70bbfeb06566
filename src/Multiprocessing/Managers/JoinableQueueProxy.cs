namespace Multiprocessing;

/// <summary>
/// A <see cref="QueueProxy{T}"/> that counts unfinished items (Python's <c>Manager().JoinableQueue()</c>), with the
/// members of <see cref="JoinableProcessQueue{T}"/>: each put adds one, each <see cref="TaskDone"/> removes one, and
/// <see cref="Join()"/> waits until none are left.
/// </summary>
/// <typeparam name="T">The item type; serializable.</typeparam>
public sealed class JoinableQueueProxy<T> : QueueProxy<T>, IAttachableProxy<JoinableQueueProxy<T>>
{
    internal JoinableQueueProxy(ManagerClient client, long id) : base(client, id) { }

    static JoinableQueueProxy<T> IAttachableProxy<JoinableQueueProxy<T>>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <summary>The number of items put and not yet marked done.</summary>
    public int UnfinishedTasks
    {
        get
        {
            using var call = _client.Begin(_id, ManagerOp.QueueUnfinished);
            return call.Send().ReadInt32();
        }
    }

    /// <summary>Marks one item taken from the queue as processed.</summary>
    /// <exception cref="InvalidOperationException">Called more times than items were put.</exception>
    public void TaskDone()
    {
        using var call = _client.Begin(_id, ManagerOp.QueueTaskDone);
        call.Send();
    }

    /// <summary>Waits until every item put has been marked done with <see cref="TaskDone"/>.</summary>
    public void Join() => ManagerWaits.Until(JoinOnce, Timeout.InfiniteTimeSpan);

    /// <summary>Waits at most <paramref name="timeout"/> for every item to be marked done; false when some remain.</summary>
    public bool Join(TimeSpan timeout) => ManagerWaits.Until(JoinOnce, timeout);

    /// <summary>Waits for every item to be marked done without blocking the caller's thread.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public async ValueTask JoinAsync(CancellationToken cancellationToken = default) =>
        await ManagerWaits.UntilAsync(JoinOnce, Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public override string ToString() => $"<JoinableQueueProxy object {_id} at {_client.Endpoint}>";

    private bool JoinOnce(int milliseconds)
    {
        using var call = _client.Begin(_id, ManagerOp.QueueJoin);
        call.Write(milliseconds);
        return call.Send().ReadBoolean();
    }
}
