using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// An object that lives in the manager's process. Built-in kinds hold serialized values as bytes, so
/// the server needs none of the user's types to store or compare them (keys compare by their
/// serialized form); only atomic updates and registered services deserialize, in user code.
/// Each object guards its own state; requests on different objects never wait for each other.
/// </summary>
internal abstract class ServedObject
{
    /// <summary>How long one request may block in the server (a lock or queue wait); clients repeat the wait, so a dead client frees its thread.</summary>
    public const int MaxWaitMilliseconds = 1000;

    public abstract ServedKind Kind { get; }

    /// <summary>Runs one request; the reply's status byte is already written. Throws to reply with an error.</summary>
    public abstract void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session);

    /// <summary>Every connection of a client process closed: it exited or died.</summary>
    public virtual void SessionEnded(Guid session) { }

    protected static byte[] ReadBlob(ref MessagePackReader reader) =>
        reader.ReadBytes() is { } bytes ? bytes.ToArray() : throw new ManagerProtocolException("expected a serialized value, found nil");

    protected static int ReadWait(ref MessagePackReader reader) => Math.Clamp(reader.ReadInt32(), 0, MaxWaitMilliseconds);

    protected static ManagerProtocolException Unknown(ManagerOp op, ServedKind kind) => new($"operation {op} does not apply to a {kind}");
}

/// <summary>An exception thrown by user code in the server: always sent home, never mistaken for a malformed request.</summary>
internal sealed class ServedUserException(Exception inner) : Exception(inner.Message, inner);

/// <summary>A serialized key: equal when the bytes are equal.</summary>
internal readonly struct BlobKey : IEquatable<BlobKey>
{
    private readonly int _hash;

    public BlobKey(byte[] bytes)
    {
        Bytes = bytes;
        var hash = new HashCode();
        hash.AddBytes(bytes);
        _hash = hash.ToHashCode();
    }

    public byte[] Bytes { get; }

    public bool Equals(BlobKey other) => _hash == other._hash && Bytes.AsSpan().SequenceEqual(other.Bytes);
    public override bool Equals(object? obj) => obj is BlobKey other && Equals(other);
    public override int GetHashCode() => _hash;
}

/// <summary>Serves <see cref="DictionaryProxy{TKey, TValue}"/> and <see cref="NamespaceProxy"/>.</summary>
internal sealed class ServedDictionary : ServedObject
{
    private readonly Dictionary<BlobKey, byte[]> _items = [];

    public override ServedKind Kind => ServedKind.Dictionary;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (_items)
        {
            switch (op)
            {
                case ManagerOp.DictGet:
                    if (_items.TryGetValue(new BlobKey(ReadBlob(ref args)), out var found)) { reply.Write(true); reply.Write(found); }
                    else reply.Write(false);
                    break;
                case ManagerOp.DictSet:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    _items[key] = ReadBlob(ref args);
                    break;
                }
                case ManagerOp.DictAdd:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    reply.Write(_items.TryAdd(key, ReadBlob(ref args)));
                    break;
                }
                case ManagerOp.DictRemove:
                    reply.Write(_items.Remove(new BlobKey(ReadBlob(ref args))));
                    break;
                case ManagerOp.DictContainsKey:
                    reply.Write(_items.ContainsKey(new BlobKey(ReadBlob(ref args))));
                    break;
                case ManagerOp.DictCount:
                    reply.Write(_items.Count);
                    break;
                case ManagerOp.DictClear:
                    _items.Clear();
                    break;
                case ManagerOp.DictItems:
                    reply.WriteArrayHeader(_items.Count * 2);
                    foreach (var (key, value) in _items) { reply.Write(key.Bytes); reply.Write(value); }
                    break;
                case ManagerOp.DictContainsPair:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    var value = ReadBlob(ref args);
                    reply.Write(_items.TryGetValue(key, out var existing) && existing.AsSpan().SequenceEqual(value));
                    break;
                }
                case ManagerOp.DictRemovePair:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    var value = ReadBlob(ref args);
                    var match = _items.TryGetValue(key, out var existing) && existing.AsSpan().SequenceEqual(value);
                    reply.Write(match && _items.Remove(key));
                    break;
                }
                case ManagerOp.DictAddOrUpdate:
                {
                    var key = ReadBlob(ref args);
                    var addValue = ReadBlob(ref args);
                    var update = ServedCode.ReadDelegate(ref args);
                    var blobKey = new BlobKey(key);
                    var result = _items.TryGetValue(blobKey, out var old) ? ServedCode.UpdateEntry(update, key, old) : addValue;
                    _items[blobKey] = result;
                    reply.Write(result);
                    break;
                }
                default:
                    throw Unknown(op, Kind);
            }
        }
    }
}

/// <summary>Serves <see cref="ListProxy{T}"/>.</summary>
internal sealed class ServedList : ServedObject
{
    private readonly List<byte[]> _items = [];

    public override ServedKind Kind => ServedKind.List;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (_items)
        {
            switch (op)
            {
                case ManagerOp.ListCount: reply.Write(_items.Count); break;
                case ManagerOp.ListGet: reply.Write(_items[CheckIndex(args.ReadInt32(), _items.Count)]); break;
                case ManagerOp.ListSet:
                {
                    var index = CheckIndex(args.ReadInt32(), _items.Count);
                    _items[index] = ReadBlob(ref args);
                    break;
                }
                case ManagerOp.ListInsert:
                {
                    var index = CheckIndex(args.ReadInt32(), _items.Count + 1);
                    _items.Insert(index, ReadBlob(ref args));
                    break;
                }
                case ManagerOp.ListRemoveAt: _items.RemoveAt(CheckIndex(args.ReadInt32(), _items.Count)); break;
                case ManagerOp.ListAdd: _items.Add(ReadBlob(ref args)); break;
                case ManagerOp.ListIndexOf: reply.Write(IndexOf(ReadBlob(ref args))); break;
                case ManagerOp.ListRemove:
                {
                    var index = IndexOf(ReadBlob(ref args));
                    if (index >= 0) _items.RemoveAt(index);
                    reply.Write(index >= 0);
                    break;
                }
                case ManagerOp.ListClear: _items.Clear(); break;
                case ManagerOp.ListItems:
                    reply.WriteArrayHeader(_items.Count);
                    foreach (var item in _items) reply.Write(item);
                    break;
                default: throw Unknown(op, Kind);
            }
        }
    }

    private int IndexOf(byte[] value) => _items.FindIndex(item => item.AsSpan().SequenceEqual(value));

    // limit is Count, or Count + 1 for Insert (which may append).
    private static int CheckIndex(int index, int limit) =>
        (uint)index < (uint)limit ? index
        : throw new ArgumentOutOfRangeException(nameof(index), index,
            limit == 0 ? $"Index {index} is out of range: the manager's list is empty." : $"Index {index} is out of range: valid indexes here are 0 to {limit - 1}.");
}

/// <summary>Serves <see cref="ValueProxy{T}"/>.</summary>
internal sealed class ServedValue(byte[] initial) : ServedObject
{
    private byte[] _value = initial;

    public override ServedKind Kind => ServedKind.Value;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (this)
        {
            switch (op)
            {
                case ManagerOp.ValueGet: reply.Write(_value); break;
                case ManagerOp.ValueSet: _value = ReadBlob(ref args); break;
                case ManagerOp.ValueUpdate:
                    _value = ServedCode.UpdateValue(ServedCode.ReadDelegate(ref args), _value);
                    reply.Write(_value);
                    break;
                default: throw Unknown(op, Kind);
            }
        }
    }
}

/// <summary>Serves <see cref="LockProxy"/>: not reentrant, any client may release (Python's manager Lock); a dead holder's lock is released.</summary>
internal sealed class ServedLock : ServedObject
{
    /// <summary>Replies to <see cref="ManagerOp.LockAcquire"/>.</summary>
    public const int NotAcquired = 0, Acquired = 1, AcquiredAbandoned = 2;

    private readonly object _gate = new();
    private bool _held;
    private bool _abandoned; // the last holder's process went away holding it; the next acquirer is told
    private Guid _owner;

    public override ServedKind Kind => ServedKind.Lock;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        switch (op)
        {
            case ManagerOp.LockAcquire:
            {
                var wait = ReadWait(ref args);
                lock (_gate)
                {
                    var deadline = Environment.TickCount64 + wait;
                    while (_held)
                    {
                        var left = deadline - Environment.TickCount64;
                        if (left <= 0 || !Monitor.Wait(_gate, (int)left)) break;
                    }
                    if (_held)
                    {
                        reply.Write(NotAcquired);
                        break;
                    }
                    _held = true;
                    _owner = session;
                    reply.Write(_abandoned ? AcquiredAbandoned : Acquired);
                    _abandoned = false;
                }
                break;
            }
            case ManagerOp.LockRelease:
                lock (_gate)
                {
                    if (!_held) throw new SynchronizationLockException("The manager's lock was released while not held. Release only after a successful Acquire, once.");
                    _held = false;
                    Monitor.Pulse(_gate);
                }
                break;
            default: throw Unknown(op, Kind);
        }
    }

    public override void SessionEnded(Guid session)
    {
        lock (_gate)
        {
            if (!_held || _owner != session) return;
            _held = false;
            _abandoned = true;
            Monitor.Pulse(_gate);
        }
    }
}

/// <summary>Serves <see cref="QueueProxy{T}"/>: first in, first out, optionally bounded.</summary>
internal sealed class ServedQueue(int maxSize) : ServedObject
{
    private readonly Queue<byte[]> _items = new();

    public override ServedKind Kind => ServedKind.Queue;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        switch (op)
        {
            case ManagerOp.QueuePut:
            {
                var item = ReadBlob(ref args);
                var wait = ReadWait(ref args);
                lock (_items)
                {
                    if (!WaitUntil(() => maxSize <= 0 || _items.Count < maxSize, wait)) { reply.Write(false); break; }
                    _items.Enqueue(item);
                    Monitor.PulseAll(_items);
                    reply.Write(true);
                }
                break;
            }
            case ManagerOp.QueueGet:
            {
                var wait = ReadWait(ref args);
                lock (_items)
                {
                    if (!WaitUntil(() => _items.Count > 0, wait)) { reply.Write(false); break; }
                    reply.Write(true);
                    reply.Write(_items.Dequeue());
                    Monitor.PulseAll(_items);
                }
                break;
            }
            case ManagerOp.QueueCount:
                lock (_items) reply.Write(_items.Count);
                break;
            default: throw Unknown(op, Kind);
        }
    }

    private bool WaitUntil(Func<bool> condition, int milliseconds)
    {
        var deadline = Environment.TickCount64 + milliseconds;
        while (!condition())
        {
            var left = deadline - Environment.TickCount64;
            if (left <= 0) return false;
            Monitor.Wait(_items, (int)left);
        }
        return true;
    }
}

/// <summary>The shared cache behind <see cref="Manager.Memoize{TArg, TResult}"/>: least recently used entries go first.</summary>
internal sealed class ServedCache(int maxEntries) : ServedObject
{
    private readonly Dictionary<BlobKey, LinkedListNode<(BlobKey Key, byte[] Value)>> _index = [];
    private readonly LinkedList<(BlobKey Key, byte[] Value)> _recency = new();

    public override ServedKind Kind => ServedKind.Cache;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (_index)
        {
            switch (op)
            {
                case ManagerOp.CacheGet:
                    if (_index.TryGetValue(new BlobKey(ReadBlob(ref args)), out var node))
                    {
                        _recency.Remove(node);
                        _recency.AddFirst(node);
                        reply.Write(true);
                        reply.Write(node.Value.Value);
                    }
                    else reply.Write(false);
                    break;
                case ManagerOp.CachePut:
                {
                    var key = new BlobKey(ReadBlob(ref args));
                    var value = ReadBlob(ref args);
                    if (_index.TryGetValue(key, out var existing)) _recency.Remove(existing);
                    _index[key] = _recency.AddFirst((key, value));
                    while (_index.Count > maxEntries)
                    {
                        var oldest = _recency.Last!;
                        _recency.RemoveLast();
                        _index.Remove(oldest.Value.Key);
                    }
                    break;
                }
                default: throw Unknown(op, Kind);
            }
        }
    }
}

/// <summary>An instance of a user's class behind <see cref="Manager.Register{TService, TImpl}"/>; its methods run one call at a time.</summary>
internal sealed class ServedService : ServedObject
{
    private readonly object _instance;
    private readonly MethodInfo[] _methods;

    public ServedService(Type service, Type implementation)
    {
        if (!service.IsInterface || !service.IsAssignableFrom(implementation) || implementation.IsAbstract)
            throw new ArgumentException($"{implementation.FullName} must be a concrete class implementing the interface {service.FullName}.");
        if (implementation.GetConstructor(Type.EmptyTypes) is not { } constructor)
            throw new ArgumentException($"{implementation.FullName} needs a public parameterless constructor so the manager can create it.");
        ServiceName = service.FullName ?? service.Name;
        _methods = ServiceMethods.Of(service);
        try { _instance = constructor.Invoke(null); }
        catch (TargetInvocationException e) when (e.InnerException is { } inner) { throw new ServedUserException(inner); }
    }

    public string ServiceName { get; }

    public override ServedKind Kind => ServedKind.Service;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        if (op != ManagerOp.ServiceCall) throw Unknown(op, Kind);
        // The index into ServiceMethods.Of(service), which client and server compute alike.
        var index = args.ReadInt32();
        if ((uint)index >= (uint)_methods.Length) throw new ManagerProtocolException($"{index} is not a method index of {ServiceName}");
        var method = _methods[index];
        var parameters = method.GetParameters();
        if (args.ReadArrayHeader() != parameters.Length) throw new ManagerProtocolException($"wrong argument count for {method.Name}");
        var values = new object?[parameters.Length];
        for (var i = 0; i < values.Length; i++) values[i] = ServedCode.Deserialize(ReadBlob(ref args), parameters[i].ParameterType);
        object? result;
        lock (_instance)
        {
            try { result = method.Invoke(_instance, values); }
            catch (TargetInvocationException e) when (e.InnerException is { } inner) { throw new ServedUserException(inner); }
        }
        if (method.ReturnType == typeof(void)) reply.WriteNil();
        else reply.Write(ServedCode.Serialize(result, method.ReturnType));
    }
}

/// <summary>User code the server runs: shipped update functions and the values they see.</summary>
internal static class ServedCode
{
    private static readonly ConcurrentDictionary<Type, Func<Delegate, byte[], byte[]>> ValueUpdaters = new();
    private static readonly ConcurrentDictionary<Type, Func<Delegate, byte[], byte[], byte[]>> EntryUpdaters = new();

    // Rebuilt functions by their bytes: equal bytes are the same method over the same captured values.
    // A loop of updates sends one function many times; resolving it once saves most of each request.
    private static readonly Dictionary<BlobKey, Delegate> Functions = [];
    private const int MaxCachedFunctions = 1024;

    public static Delegate ReadDelegate(ref MessagePackReader args)
    {
        var bytes = args.ReadBytes() ?? throw new ManagerProtocolException("expected a shipped function, found nil");
        var key = new BlobKey(bytes.ToArray());
        lock (Functions)
        {
            if (Functions.TryGetValue(key, out var known)) return known;
        }
        try
        {
            var reader = new MessagePackReader(bytes);
            var function = DelegateShipper.Read(ref reader, ManagerSerialization.Untrusted);
            // Only a function without mutable captures may be shared between requests: rebuilt closures
            // hold copies of values, which the function could change.
            if (DelegateShipper.IsStateless(function))
            {
                lock (Functions)
                {
                    if (Functions.Count >= MaxCachedFunctions) Functions.Clear();
                    Functions[key] = function;
                }
            }
            return function;
        }
        catch (Exception e) when (e is not SerializationException)
        {
            throw new SerializationException($"The manager could not rebuild the update function: {e.Message} The manager process must be able to load the function's assembly.", e);
        }
    }

    public static byte[] UpdateValue(Delegate update, byte[] old)
    {
        var type = update.GetType();
        if (!type.IsGenericType || type.GetGenericTypeDefinition() != typeof(Func<,>) || type.GetGenericArguments() is not [var a, var b] || a != b)
            throw new ManagerProtocolException($"a value update must be a Func<T, T>, not {type}");
        return ValueUpdaters.GetOrAdd(type, static t => (Func<Delegate, byte[], byte[]>)typeof(ServedCode).GetMethod(nameof(RunValueUpdate), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(t.GetGenericArguments()[0]).CreateDelegate(typeof(Func<Delegate, byte[], byte[]>)))(update, old);
    }

    public static byte[] UpdateEntry(Delegate update, byte[] key, byte[] old)
    {
        var type = update.GetType();
        if (!type.IsGenericType || type.GetGenericTypeDefinition() != typeof(Func<,,>) || type.GetGenericArguments() is not [_, var v, var r] || v != r)
            throw new ManagerProtocolException($"an entry update must be a Func<TKey, TValue, TValue>, not {type}");
        return EntryUpdaters.GetOrAdd(type, static t => (Func<Delegate, byte[], byte[], byte[]>)typeof(ServedCode).GetMethod(nameof(RunEntryUpdate), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(t.GetGenericArguments()[0], t.GetGenericArguments()[1]).CreateDelegate(typeof(Func<Delegate, byte[], byte[], byte[]>)))(update, key, old);
    }

    private static byte[] RunValueUpdate<T>(Delegate update, byte[] old)
    {
        var value = ManagerSerialization.FromBytes<T>(old);
        try { value = ((Func<T, T>)update)(value); }
        catch (Exception e) { throw new ServedUserException(e); }
        return ManagerSerialization.ToBytes(value);
    }

    private static byte[] RunEntryUpdate<TKey, TValue>(Delegate update, byte[] key, byte[] old)
    {
        var value = ManagerSerialization.FromBytes<TValue>(old);
        try { value = ((Func<TKey, TValue, TValue>)update)(ManagerSerialization.FromBytes<TKey>(key), value); }
        catch (Exception e) { throw new ServedUserException(e); }
        return ManagerSerialization.ToBytes(value);
    }

    public static object? Deserialize(byte[] bytes, Type type)
    {
        try { return MessagePackSerializer.Deserialize(type, bytes, ManagerSerialization.UntrustedOptions); }
        catch (MessagePackSerializationException e) { throw new SerializationException($"The manager could not read a {type.Name} argument: {e.InnerException?.Message ?? e.Message}", e); }
    }

    public static byte[] Serialize(object? value, Type type)
    {
        try { return MessagePackSerializer.Serialize(type, value, ManagerSerialization.UntrustedOptions); }
        catch (MessagePackSerializationException e) { throw new SerializationException($"The manager could not serialize a {type.Name} result: {e.InnerException?.Message ?? e.Message}", e); }
    }
}
