namespace Multiprocessing;

/// <summary>
/// A first-in, first-out queue that lives in a manager's process (Python's <c>Manager().Queue()</c>),
/// with the members of <c>ProcessQueue&lt;T&gt;</c>. Slower than a <c>ProcessQueue&lt;T&gt;</c> (one
/// request per item) but reachable from any process that can reach the manager, remote ones too.
/// </summary>
/// <typeparam name="T">The item type; serializable.</typeparam>
public class QueueProxy<T> : IAttachableProxy<QueueProxy<T>>
{
    private protected readonly ManagerClient _client;
    private protected readonly long _id;

    internal QueueProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static QueueProxy<T> IAttachableProxy<QueueProxy<T>>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <summary>The number of items queued now (others may change it at once).</summary>
    public int Count
    {
        get
        {
            using var call = _client.Begin(_id, ManagerOp.QueueCount);
            var reply = call.Send();
            return reply.ReadInt32();
        }
    }

    /// <summary>Adds an item, waiting while a bounded queue is full.</summary>
    public void Put(T item)
    {
        var bytes = ManagerSerialization.ToBytes(item);
        while (!PutOnce(bytes, ServedObject.MaxWaitMilliseconds)) { }
    }

    /// <summary>Adds an item unless the queue stays full for <paramref name="timeout"/>; true when added.</summary>
    public bool TryPut(T item, TimeSpan timeout)
    {
        var bytes = ManagerSerialization.ToBytes(item);
        return ManagerWaits.Until(wait => PutOnce(bytes, wait), timeout);
    }

    /// <summary>Adds an item, waiting asynchronously while a bounded queue is full.</summary>
    public async ValueTask PutAsync(T item, CancellationToken cancellationToken = default)
    {
        var bytes = ManagerSerialization.ToBytes(item);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await Task.Run(() => PutOnce(bytes, 250), cancellationToken).ConfigureAwait(false)) return;
        }
    }

    /// <summary>Removes and returns the oldest item, waiting while the queue is empty.</summary>
    public T Get()
    {
        T item;
        while (!GetOnce(ServedObject.MaxWaitMilliseconds, out item)) { }
        return item;
    }

    /// <summary>Removes the oldest item unless the queue stays empty for <paramref name="timeout"/>; true when one was taken.</summary>
    public bool TryGet(out T item, TimeSpan timeout)
    {
        T taken = default!;
        var ok = ManagerWaits.Until(wait => GetOnce(wait, out taken), timeout);
        item = taken;
        return ok;
    }

    /// <summary>Removes and returns the oldest item, waiting asynchronously while the queue is empty.</summary>
    public async ValueTask<T> GetAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (ok, item) = await Task.Run(() => (GetOnce(250, out var taken), taken), cancellationToken).ConfigureAwait(false);
            if (ok) return item;
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"<QueueProxy object {_id} at {_client.Endpoint}>";

    private bool PutOnce(byte[] item, int wait)
    {
        using var call = _client.Begin(_id, ManagerOp.QueuePut);
        call.Write(item);
        call.Write(wait);
        var reply = call.Send();
        return reply.ReadBoolean();
    }

    private bool GetOnce(int wait, out T item)
    {
        using var call = _client.Begin(_id, ManagerOp.QueueGet);
        call.Write(wait);
        var reply = call.Send();
        if (reply.ReadBoolean())
        {
            item = ManagerCall.ReadValue<T>(ref reply);
            return true;
        }
        item = default!;
        return false;
    }
}
