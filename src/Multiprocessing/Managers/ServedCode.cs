using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using MessagePack;

namespace Multiprocessing;

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
