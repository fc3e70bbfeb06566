using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// The library's own formatters, consulted before MessagePack's: objects that travel by handle (a
/// name to attach to) rather than by value, and arrays of unmanaged values sent as one block.
/// </summary>
internal sealed class HandleResolver : IFormatterResolver
{
    public static readonly HandleResolver Instance = new();

    public IMessagePackFormatter<T>? GetFormatter<T>() => Cache<T>.Formatter;

    /// <summary>True when values of <paramref name="type"/> travel by handle.</summary>
    public static bool IsHandleType(Type type) => Find(type) is not null && !type.IsArray;

    /// <summary>
    /// Each shareable concept contributes one provider: given a type, its formatter (an
    /// <see cref="IMessagePackFormatter{T}"/> for exactly that type) or null.
    /// </summary>
    private static readonly Func<Type, object?>[] Providers =
    [
        BlittableArrayFormatter<int>.For,
        type => MachineLocal(type, SharedHandles.FormatterFor(type)),
        type => MachineLocal(type, QueueHandles.FormatterFor(type)),
        ProxyHandles.FormatterFor,
    ];

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, object?> Found = new();

    private static object? Find(Type type) => Found.GetOrAdd(type, static t =>
    {
        foreach (var provider in Providers)
            if (provider(t) is { } formatter) return formatter;
        return null;
    });

    private static class Cache<T>
    {
        public static readonly IMessagePackFormatter<T>? Formatter = (IMessagePackFormatter<T>?)Find(typeof(T));
    }

    /// <summary>
    /// The shared-memory objects and the process queues and pipes are handles to something on this machine: they
    /// refuse to be written for another one (see <see cref="MachineBoundary"/>). Manager proxies check their endpoint.
    /// </summary>
    private static object? MachineLocal(Type type, object? formatter) =>
        formatter is null ? null : Activator.CreateInstance(typeof(MachineLocalFormatter<>).MakeGenericType(type), formatter);

    private sealed class MachineLocalFormatter<T>(IMessagePackFormatter<T> inner) : IMessagePackFormatter<T>
    {
        public void Serialize(ref MessagePackWriter writer, T value, MessagePackSerializerOptions options)
        {
            if (value is not null) MachineBoundary.Check(typeof(T));
            inner.Serialize(ref writer, value, options);
        }

        public T Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) => inner.Deserialize(ref reader, options);
    }
}
