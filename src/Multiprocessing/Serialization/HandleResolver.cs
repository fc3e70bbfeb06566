using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// Formatters for the library's own objects that travel by handle (a name to attach to) rather
/// than by value. Each shareable type registers its formatter here.
/// </summary>
internal sealed class HandleResolver : IFormatterResolver
{
    public static readonly HandleResolver Instance = new();

    public IMessagePackFormatter<T>? GetFormatter<T>() => Cache<T>.Formatter;

    /// <summary>True when values of <paramref name="type"/> travel by handle.</summary>
    public static bool IsHandleType(Type type) => Find(type) is not null;

    /// <summary>
    /// Each shareable concept contributes one provider: given a type, its formatter (an
    /// <see cref="IMessagePackFormatter{T}"/> for exactly that type) or null.
    /// </summary>
    private static readonly Func<Type, object?>[] Providers =
    [
        SharedHandles.FormatterFor,
    ];

    private static object? Find(Type type)
    {
        foreach (var provider in Providers)
            if (provider(type) is { } formatter) return formatter;
        return null;
    }

    private static class Cache<T>
    {
        public static readonly IMessagePackFormatter<T>? Formatter = (IMessagePackFormatter<T>?)Find(typeof(T));
    }
}
