using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// Stops a value that nests too deep before it overflows the stack: MessagePack recurses once per level
/// while writing and has no limit of its own there, so an object that refers back to itself (a parent link,
/// a doubly linked list) used to end the sending process with a stack overflow, which no catch survives.
/// Every formatter that can recurse is wrapped to count the levels it is in and throw a
/// <see cref="SerializationException"/> past <see cref="MaxDepth"/>. Reading is bounded by MessagePack's own
/// <see cref="MessagePackSecurity.MaximumObjectGraphDepth"/>, which has the same default.
/// </summary>
internal sealed class DepthGuardResolver : IFormatterResolver
{
    /// <summary>The deepest a value may nest when it is written.</summary>
    public const int MaxDepth = 500;

    /// <summary>The default serializer's resolvers, guarded.</summary>
    public static readonly DepthGuardResolver Instance = new();

    private static readonly IFormatterResolver Inner = MessagePack.Resolvers.CompositeResolver.Create(
        HandleResolver.Instance,
        MessagePack.Resolvers.NativeDateTimeResolver.Instance,
        MessagePack.Resolvers.ContractlessStandardResolverAllowPrivate.Instance);

    private DepthGuardResolver() { }

    // A static generic cache, as MessagePack's own resolvers keep: the lookup is on the path of every member written.
    public IMessagePackFormatter<T>? GetFormatter<T>() => Cache<T>.Formatter;

    private static class Cache<T>
    {
        public static readonly IMessagePackFormatter<T>? Formatter = Wrap<T>();
    }

    private static IMessagePackFormatter<T>? Wrap<T>()
    {
        var formatter = CycleTypes.Rebuilds(typeof(T))
            ? (IMessagePackFormatter<T>)Activator.CreateInstance(typeof(CycleFormatter<>).MakeGenericType(typeof(T)))!
            : Inner.GetFormatter<T>();
        // An abstract class has no formatter of its own: its values are all of wider types.
        if (KeepsRuntimeType(typeof(T))) formatter = new RuntimeTypeFormatter<T>(formatter);
        if (formatter is null) return null;
        if (KeepsIdentity(typeof(T)))
            formatter = (IMessagePackFormatter<T>)Activator.CreateInstance(typeof(ReferenceFormatter<>).MakeGenericType(typeof(T)), formatter)!;
        return !CanNest(typeof(T)) ? formatter : new DepthGuardFormatter<T>(formatter);
    }

    /// <summary>
    /// Whether values declared as <paramref name="type"/> are objects whose sharing is kept (see <see cref="ReferenceFormatter{T}"/>):
    /// reference types, but not strings (immutable: sharing one changes nothing), nor the library's handles (they attach by name).
    /// </summary>
    public static bool KeepsIdentity(Type type) =>
        !type.IsValueType && type != typeof(string) && !type.IsPointer && !typeof(Delegate).IsAssignableFrom(type) && !HandleResolver.IsHandleType(type);

    /// <summary>
    /// Whether a value declared as <paramref name="type"/> may be of a wider runtime type: <see cref="object"/>,
    /// interfaces, abstract and unsealed classes (but not strings, arrays, delegates, exceptions, which have
    /// their own forms).
    /// </summary>
    private static bool KeepsRuntimeType(Type type) =>
        !type.IsValueType && !type.IsSealed && !type.IsArray && type != typeof(string)
        && !typeof(Delegate).IsAssignableFrom(type) && !typeof(Exception).IsAssignableFrom(type) && !type.IsPointer;

    /// <summary>
    /// Whether writing a <paramref name="type"/> can write another value that is not a leaf: collections,
    /// <see cref="object"/>, interfaces, abstract types, and types with such a member. A record of numbers and
    /// strings cannot recurse, so its formatter is not wrapped and costs nothing more.
    /// </summary>
    private static bool CanNest(Type type)
    {
        if (IsLeaf(type)) return false;
        if (type == typeof(object) || type.IsInterface || type.IsAbstract || type.IsArray || typeof(System.Collections.IEnumerable).IsAssignableFrom(type)) return true;
        const System.Reflection.BindingFlags all = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic;
        for (var t = type; t is not null && t != typeof(object) && t != typeof(ValueType); t = t.BaseType)
        {
            if (t.GetFields(all | System.Reflection.BindingFlags.DeclaredOnly).Any(f => !IsLeaf(f.FieldType))) return true;
            if (t.GetProperties(all | System.Reflection.BindingFlags.DeclaredOnly).Any(p => p.GetIndexParameters().Length == 0 && !IsLeaf(p.PropertyType))) return true;
        }
        return false;
    }

    /// <summary>Types whose formatter never writes another value through the resolver.</summary>
    private static bool IsLeaf(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(DateTime)
            || type == typeof(DateTimeOffset) || type == typeof(TimeSpan) || type == typeof(Guid) || type == typeof(byte[]);
    }
}

/// <summary>Counts the levels being written on this thread around the formatter it wraps.</summary>
internal sealed class DepthGuardFormatter<T>(IMessagePackFormatter<T> inner) : IMessagePackFormatter<T>
{
    public void Serialize(ref MessagePackWriter writer, T value, MessagePackSerializerOptions options)
    {
        if (++WriteDepth.Current > DepthGuardResolver.MaxDepth)
        {
            WriteDepth.Current--;
            throw new SerializationException(
                $"A value nests deeper than {DepthGuardResolver.MaxDepth} levels (a {typeof(T).Name} at that depth): either it refers back to itself " +
                "(a cycle, such as a parent link or a doubly linked list, which cannot travel between processes), or it is very deep (such as a long " +
                "linked list). Send a flat form instead: an array or list of its items, with indexes where items refer to each other.");
        }
        try
        {
            inner.Serialize(ref writer, value, options);
        }
        catch (Exception e) when (TravelErrors.Passing(e, typeof(T)))
        {
            throw; // never taken: the filter only notes the member path an error passes through
        }
        finally
        {
            WriteDepth.Current--;
        }
    }

    public T Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) => inner.Deserialize(ref reader, options);
}

/// <summary>How many guarded formatters are writing on this thread.</summary>
internal static class WriteDepth
{
    [ThreadStatic] public static int Current;
}
