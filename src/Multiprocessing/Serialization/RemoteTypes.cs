using System.Collections.Concurrent;

namespace Multiprocessing;

/// <summary>
/// The types this process lets data from a manager create by name. A value stored in a manager under a wider
/// type than its own (a <c>Dog</c> in a dictionary of <c>Animal</c>, a record in an <c>object</c> slot) carries
/// its type's name; since a manager can be reached over the network, a name in such bytes is honoured only for
/// types allowed here, so bytes from a peer cannot make this process construct (and run the code of) a type it
/// did not choose. Values read as their exact declared type need nothing here; nor do values between a program
/// and its own pool workers, which trust each other. Primitive types, strings, <see cref="decimal"/>,
/// <see cref="DateTime"/>, <see cref="DateTimeOffset"/>, <see cref="TimeSpan"/> and <see cref="Guid"/> are
/// always allowed. Allow a type in every process that reads it (for workers, in the pool's initializer).
/// </summary>
/// <example><code>
/// RemoteTypes.Allow&lt;Dog&gt;();
/// var pets = manager.Dictionary&lt;string, Animal&gt;("pets");
/// pets["rex"] = new Dog("Rex");
/// </code></example>
public static class RemoteTypes
{
    private static readonly ConcurrentDictionary<Type, bool> Allowed = new();

    /// <summary>Lets manager data create values of <typeparamref name="T"/> by name.</summary>
    public static void Allow<T>() => Allow(typeof(T));

    /// <summary>Lets manager data create values of <paramref name="type"/> by name.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="type"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="type"/> is open generic, abstract or an interface (only concrete types are created).</exception>
    public static void Allow(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (type.ContainsGenericParameters || type.IsAbstract || type.IsInterface)
            throw new ArgumentException($"{type} cannot be created: allow the concrete types whose values travel (for example Dog, not Animal).", nameof(type));
        Allowed[type] = true;
    }

    /// <summary>Whether manager data may create values of <paramref name="type"/> by name.</summary>
    public static bool IsAllowed(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (Allowed.ContainsKey(type)) return true;
        // The library's manager proxies are handles: creating one attaches to an object of that manager, no user code runs.
        if (typeof(IManagerProxy).IsAssignableFrom(type) && type.Assembly == typeof(RemoteTypes).Assembly) return true;
        if (type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(DateTime)
            || type == typeof(DateTimeOffset) || type == typeof(TimeSpan) || type == typeof(Guid)) return true;
        // Arrays and the BCL's collections run no code of their own beyond their elements'.
        if (type.IsArray) return IsAllowed(type.GetElementType()!);
        if (type.IsGenericType && BclCollections.Contains(type.GetGenericTypeDefinition()))
            return type.GetGenericArguments().All(IsAllowed);
        return false;
    }

    private static readonly HashSet<Type> BclCollections =
    [
        typeof(List<>), typeof(Dictionary<,>), typeof(HashSet<>), typeof(Queue<>), typeof(Stack<>), typeof(SortedDictionary<,>),
        typeof(SortedSet<>), typeof(LinkedList<>), typeof(KeyValuePair<,>), typeof(Nullable<>), typeof(ValueTuple<,>),
        typeof(ValueTuple<,,>), typeof(ValueTuple<,,,>), typeof(Tuple<,>), typeof(Tuple<,,>),
    ];
}
