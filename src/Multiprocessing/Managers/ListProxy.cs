using System.Collections;

namespace Multiprocessing;

/// <summary>
/// A list that lives in a manager's process (Python's <c>ListProxy</c>), usable from any process as
/// an <see cref="IList{T}"/>. Each member is one request to the manager; items compare by their
/// serialized form (<see cref="IndexOf"/>, <see cref="Contains"/>, <see cref="Remove"/>).
/// Enumeration and <see cref="CopyTo"/> work on a snapshot taken in one request.
/// Captured by a worker's lambda or passed as an argument, it arrives attached to the same list.
/// </summary>
/// <typeparam name="T">The item type; serializable.</typeparam>
public sealed class ListProxy<T> : IList<T>, IAttachableProxy<ListProxy<T>>
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal ListProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static ListProxy<T> IAttachableProxy<ListProxy<T>>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">The index is outside the list.</exception>
    public T this[int index]
    {
        get => ListRequests.Get<T>(_client, _id, index);
        set => ListRequests.Set(_client, _id, index, value);
    }

    /// <inheritdoc />
    public int Count
    {
        get
        {
            using var call = _client.Begin(_id, ManagerOp.ListCount);
            var reply = call.Send();
            return reply.ReadInt32();
        }
    }

    /// <inheritdoc />
    public bool IsReadOnly => false;

    /// <inheritdoc />
    public void Add(T item)
    {
        using var call = _client.Begin(_id, ManagerOp.ListAdd);
        call.WriteValue(item);
        call.Send();
    }

    /// <inheritdoc />
    public void Clear()
    {
        using var call = _client.Begin(_id, ManagerOp.ListClear);
        call.Send();
    }

    /// <inheritdoc />
    public bool Contains(T item) => IndexOf(item) >= 0;

    /// <inheritdoc />
    public void CopyTo(T[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

    /// <summary>Enumerates a snapshot of the items, taken in one request.</summary>
    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)Snapshot()).GetEnumerator();

    /// <inheritdoc />
    public int IndexOf(T item)
    {
        using var call = _client.Begin(_id, ManagerOp.ListIndexOf);
        call.WriteValue(item);
        var reply = call.Send();
        return reply.ReadInt32();
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">The index is outside 0..Count.</exception>
    public void Insert(int index, T item)
    {
        using var call = _client.Begin(_id, ManagerOp.ListInsert);
        call.Write(index);
        call.WriteValue(item);
        call.Send();
    }

    /// <inheritdoc />
    public bool Remove(T item)
    {
        using var call = _client.Begin(_id, ManagerOp.ListRemove);
        call.WriteValue(item);
        var reply = call.Send();
        return reply.ReadBoolean();
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">The index is outside the list.</exception>
    public void RemoveAt(int index)
    {
        using var call = _client.Begin(_id, ManagerOp.ListRemoveAt);
        call.Write(index);
        call.Send();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public override string ToString() => $"<ListProxy object {_id} at {_client.Endpoint}>";

    private T[] Snapshot() => ListRequests.All<T>(_client, _id);
}
