using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Dynamic;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// A bag of named values that lives in a manager's process (Python's <c>Manager().Namespace()</c>).
/// Use it as <c>dynamic</c> (<c>ns.Total = 5; int t = ns.Total;</c>), with typed
/// <see cref="Get{T}"/>/<see cref="Set{T}"/>, or as an <see cref="IDictionary{TKey, TValue}"/> of
/// <see cref="string"/> to <see cref="object"/> (cast to the interface). Each value keeps its runtime
/// type, so it reads back as what was stored. Reading or writing a member is one request;
/// <c>ns.Total += 1</c> is two and is not atomic (use <see cref="ValueProxy{T}.Update"/> or a lock).
/// </summary>
public sealed class NamespaceProxy : DynamicObject, IDictionary<string, object?>, IAttachableProxy<NamespaceProxy>
{
    private readonly DictionaryProxy<string, (string Type, byte[] Data)> _entries;
    private readonly ManagerClient _client;
    private readonly long _id;

    internal NamespaceProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
        _entries = new DictionaryProxy<string, (string, byte[])>(client, id);
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static NamespaceProxy IAttachableProxy<NamespaceProxy>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <summary>The value named <paramref name="name"/>, as <typeparamref name="T"/>.</summary>
    /// <exception cref="KeyNotFoundException">No value has that name.</exception>
    /// <exception cref="InvalidCastException">The value is not a <typeparamref name="T"/>.</exception>
    public T Get<T>(string name)
    {
        var value = Read(name);
        return value is T typed ? typed
            : value is null && default(T) is null ? default!
            : throw new InvalidCastException($"The namespace member '{name}' holds a {value?.GetType().Name ?? "null"}, not a {typeof(T).Name}.");
    }

    /// <summary>Stores <paramref name="value"/> under <paramref name="name"/>.</summary>
    public void Set<T>(string name, T value) => Write(name, value);

    /// <summary>Whether a value named <paramref name="name"/> exists.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>The names of the values, a snapshot.</summary>
    public IReadOnlyList<string> Names => [.. _entries.Keys];

    /// <inheritdoc />
    public override bool TryGetMember(GetMemberBinder binder, out object? result)
    {
        if (_entries.TryGetValue(binder.Name, out var entry)) { result = Decode(binder.Name, entry); return true; }
        throw new KeyNotFoundException($"The manager's namespace has no member '{binder.Name}'; set it first (ns.{binder.Name} = ...).");
    }

    /// <inheritdoc />
    public override bool TrySetMember(SetMemberBinder binder, object? value)
    {
        Write(binder.Name, value);
        return true;
    }

    /// <inheritdoc />
    public override bool TryDeleteMember(DeleteMemberBinder binder) => _entries.Remove(binder.Name);

    /// <inheritdoc />
    public override IEnumerable<string> GetDynamicMemberNames() => Names;

    /// <inheritdoc />
    public override string ToString() => $"<NamespaceProxy object {_id} at {_client.Endpoint}>";

    object? IDictionary<string, object?>.this[string key] { get => Read(key); set => Write(key, value); }
    ICollection<string> IDictionary<string, object?>.Keys => _entries.Keys;
    ICollection<object?> IDictionary<string, object?>.Values => [.. Snapshot().Select(p => p.Value)];
    int ICollection<KeyValuePair<string, object?>>.Count => _entries.Count;
    bool ICollection<KeyValuePair<string, object?>>.IsReadOnly => false;
    void IDictionary<string, object?>.Add(string key, object? value) => _entries.Add(key, Encode(value));
    void ICollection<KeyValuePair<string, object?>>.Add(KeyValuePair<string, object?> item) => _entries.Add(item.Key, Encode(item.Value));
    void ICollection<KeyValuePair<string, object?>>.Clear() => _entries.Clear();
    bool ICollection<KeyValuePair<string, object?>>.Contains(KeyValuePair<string, object?> item) => _entries.Contains(new(item.Key, Encode(item.Value)));
    bool IDictionary<string, object?>.ContainsKey(string key) => _entries.ContainsKey(key);
    void ICollection<KeyValuePair<string, object?>>.CopyTo(KeyValuePair<string, object?>[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);
    IEnumerator<KeyValuePair<string, object?>> IEnumerable<KeyValuePair<string, object?>>.GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)Snapshot()).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => Snapshot().GetEnumerator();
    bool IDictionary<string, object?>.Remove(string key) => _entries.Remove(key);
    bool ICollection<KeyValuePair<string, object?>>.Remove(KeyValuePair<string, object?> item) => _entries.Remove(new KeyValuePair<string, (string, byte[])>(item.Key, Encode(item.Value)));

    bool IDictionary<string, object?>.TryGetValue(string key, [MaybeNullWhen(false)] out object? value)
    {
        if (_entries.TryGetValue(key, out var entry)) { value = Decode(key, entry); return true; }
        value = null;
        return false;
    }

    private object? Read(string name) =>
        _entries.TryGetValue(name, out var entry) ? Decode(name, entry) : throw new KeyNotFoundException($"The manager's namespace has no member '{name}'.");

    private void Write<T>(string name, T value)
    {
        ArgumentNullException.ThrowIfNull(name);
        _entries[name] = Encode(value);
    }

    private KeyValuePair<string, object?>[] Snapshot() => [.. _entries.Select(p => new KeyValuePair<string, object?>(p.Key, Decode(p.Key, p.Value)))];

    private static (string, byte[]) Encode<T>(T value)
    {
        if (value is null) return ("", []);
        var type = value.GetType();
        try { return (DelegateShipper.TypeName(type), MessagePackSerializer.Serialize(type, value, ManagerSerialization.UntrustedOptions)); }
        catch (MessagePackSerializationException e)
        {
            throw new SerializationException($"A {type.Name} cannot be stored in the manager's namespace: {e.InnerException?.Message ?? e.Message}", e);
        }
    }

    private static object? Decode(string name, (string Type, byte[] Data) entry)
    {
        if (entry.Type.Length == 0) return null;
        var type = DelegateShipper.ResolveType(entry.Type);
        try { return MessagePackSerializer.Deserialize(type, entry.Data, ManagerSerialization.UntrustedOptions); }
        catch (MessagePackSerializationException e)
        {
            throw new SerializationException($"The namespace member '{name}' could not be read as {type.Name}: {e.InnerException?.Message ?? e.Message}", e);
        }
    }
}
