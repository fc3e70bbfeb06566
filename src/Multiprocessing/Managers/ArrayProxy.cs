using System.Collections;

namespace Multiprocessing;

/// <summary>
/// An array of fixed length that lives in a manager's process (Python's <c>Manager().Array(typecode, sequence)</c>),
/// with the member names of <see cref="SharedArray{T}"/> where they apply (<see cref="Length"/>, an indexer,
/// <see cref="ToArray"/>); reachable from any process that reaches the manager, remote ones too. Each access is one
/// request; read many items at once with <see cref="ToArray"/>. On one machine, a <see cref="SharedArray{T}"/> of
/// unmanaged values is far faster.
/// </summary>
/// <typeparam name="T">The item type; serializable.</typeparam>
public sealed class ArrayProxy<T> : IReadOnlyList<T>, IAttachableProxy<ArrayProxy<T>>
{
    private readonly ManagerClient _client;
    private readonly long _id;
    private int _length = -1;

    internal ArrayProxy(ManagerClient client, long id, int length)
    {
        _client = client;
        _id = id;
        _length = length;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static ArrayProxy<T> IAttachableProxy<ArrayProxy<T>>.Attach(ManagerClient client, long objectId) => new(client, objectId, -1);

    /// <summary>The number of items (fixed when the array was made).</summary>
    public int Length
    {
        get
        {
            if (_length >= 0) return _length;
            using var call = _client.Begin(_id, ManagerOp.ListCount);
            return _length = call.Send().ReadInt32();
        }
    }

    /// <inheritdoc />
    int IReadOnlyCollection<T>.Count => Length;

    /// <summary>Reads or replaces the item at <paramref name="index"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside the array.</exception>
    public T this[int index]
    {
        get => ListRequests.Get<T>(_client, _id, index);
        set => ListRequests.Set(_client, _id, index, value);
    }

    /// <summary>A copy of every item, read in one request.</summary>
    public T[] ToArray() => ListRequests.All<T>(_client, _id);

    /// <summary>Enumerates a copy of the items taken at the start (one request).</summary>
    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)ToArray()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public override string ToString() => $"<ArrayProxy object {_id} at {_client.Endpoint}>";
}
