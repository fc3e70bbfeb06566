using System.Collections;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// A dictionary that lives in a manager's process (Python's <c>DictProxy</c>), usable from any
/// process as an <see cref="IDictionary{TKey, TValue}"/>. Each member is one request to the manager.
/// Keys are compared by their serialized form, so two keys are the same key when they serialize to
/// the same bytes (true for numbers, strings, records of such; a custom comparer does not apply).
/// <see cref="Keys"/>, <see cref="Values"/> and enumeration work on a snapshot taken in one request.
/// Captured by a worker's lambda or passed as an argument, it arrives attached to the same dictionary.
/// </summary>
/// <typeparam name="TKey">The key type; serializable, not null.</typeparam>
/// <typeparam name="TValue">The value type; serializable. A proxy (say an <see cref="IList{T}"/> from the same manager) is stored as a reference to the shared object.</typeparam>
public sealed class DictionaryProxy<TKey, TValue> : IDictionary<TKey, TValue>, IAttachableProxy<DictionaryProxy<TKey, TValue>> where TKey : notnull
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal DictionaryProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static DictionaryProxy<TKey, TValue> IAttachableProxy<DictionaryProxy<TKey, TValue>>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <inheritdoc />
    /// <exception cref="KeyNotFoundException">Getting a key that is not in the dictionary.</exception>
    public TValue this[TKey key]
    {
        get => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"The key '{key}' is not in the manager's dictionary.");
        set
        {
            ArgumentNullException.ThrowIfNull(key);
            using var call = _client.Begin(_id, ManagerOp.DictSet);
            call.WriteValue(key);
            call.WriteValue(value);
            call.Send();
        }
    }

    /// <summary>A snapshot of the keys.</summary>
    public ICollection<TKey> Keys => [.. Snapshot().Select(p => p.Key)];

    /// <summary>A snapshot of the values.</summary>
    public ICollection<TValue> Values => [.. Snapshot().Select(p => p.Value)];

    /// <inheritdoc />
    public int Count
    {
        get
        {
            using var call = _client.Begin(_id, ManagerOp.DictCount);
            var reply = call.Send();
            return reply.ReadInt32();
        }
    }

    /// <inheritdoc />
    public bool IsReadOnly => false;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The key is already present.</exception>
    public void Add(TKey key, TValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var call = _client.Begin(_id, ManagerOp.DictAdd);
        call.WriteValue(key);
        call.WriteValue(value);
        var reply = call.Send();
        if (!reply.ReadBoolean()) throw new ArgumentException($"An item with the same key has already been added to the manager's dictionary. Key: {key}", nameof(key));
    }

    /// <inheritdoc />
    public void Add(KeyValuePair<TKey, TValue> item) => Add(item.Key, item.Value);

    /// <summary>
    /// Atomically, in the manager: stores <paramref name="addValue"/> when <paramref name="key"/> is
    /// absent, else replaces the value with <paramref name="update"/>(key, old value). The function
    /// runs in the manager's process under the dictionary's lock (it travels there like a worker
    /// delegate), so concurrent updates from many processes never lose one. Keep it short and pure.
    /// </summary>
    /// <returns>The value stored.</returns>
    public TValue AddOrUpdate(TKey key, TValue addValue, Func<TKey, TValue, TValue> update)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(update);
        var function = ManagerSerialization.ShipFunction(update);
        using var call = _client.Begin(_id, ManagerOp.DictAddOrUpdate);
        call.WriteValue(key);
        call.WriteValue(addValue);
        call.Write(function);
        var reply = call.Send();
        return ManagerCall.ReadValue<TValue>(ref reply);
    }

    /// <inheritdoc />
    public void Clear()
    {
        using var call = _client.Begin(_id, ManagerOp.DictClear);
        call.Send();
    }

    /// <summary>True when the key is present with a value that serializes to the same bytes.</summary>
    public bool Contains(KeyValuePair<TKey, TValue> item) => PairOp(ManagerOp.DictContainsPair, item);

    /// <inheritdoc />
    public bool ContainsKey(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var call = _client.Begin(_id, ManagerOp.DictContainsKey);
        call.WriteValue(key);
        var reply = call.Send();
        return reply.ReadBoolean();
    }

    /// <inheritdoc />
    public void CopyTo(KeyValuePair<TKey, TValue>[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

    /// <summary>Enumerates a snapshot of the entries, taken in one request.</summary>
    public IEnumerator<KeyValuePair<TKey, TValue>> GetEnumerator() => ((IEnumerable<KeyValuePair<TKey, TValue>>)Snapshot()).GetEnumerator();

    /// <inheritdoc />
    public bool Remove(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var call = _client.Begin(_id, ManagerOp.DictRemove);
        call.WriteValue(key);
        var reply = call.Send();
        return reply.ReadBoolean();
    }

    /// <summary>Removes the key when its value serializes to the same bytes as the pair's.</summary>
    public bool Remove(KeyValuePair<TKey, TValue> item) => PairOp(ManagerOp.DictRemovePair, item);

    /// <inheritdoc />
    public bool TryGetValue(TKey key, out TValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var call = _client.Begin(_id, ManagerOp.DictGet);
        call.WriteValue(key);
        var reply = call.Send();
        if (reply.ReadBoolean())
        {
            value = ManagerCall.ReadValue<TValue>(ref reply);
            return true;
        }
        value = default!;
        return false;
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public override string ToString() => $"<DictionaryProxy object {_id} at {_client.Endpoint}>";

    private bool PairOp(ManagerOp op, KeyValuePair<TKey, TValue> item)
    {
        ArgumentNullException.ThrowIfNull(item.Key);
        using var call = _client.Begin(_id, op);
        call.WriteValue(item.Key);
        call.WriteValue(item.Value);
        var reply = call.Send();
        return reply.ReadBoolean();
    }

    private KeyValuePair<TKey, TValue>[] Snapshot()
    {
        using var call = _client.Begin(_id, ManagerOp.DictItems);
        var reply = call.Send();
        var result = new KeyValuePair<TKey, TValue>[reply.ReadArrayHeader() / 2];
        for (var i = 0; i < result.Length; i++)
        {
            var key = ManagerCall.ReadValue<TKey>(ref reply);
            result[i] = new(key, ManagerCall.ReadValue<TValue>(ref reply));
        }
        return result;
    }
}
