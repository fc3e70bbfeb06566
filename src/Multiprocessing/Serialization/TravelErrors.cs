using System.Reflection;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Turns a serializer's failure into the library's <see cref="SerializationException"/>, in the user's terms:
/// which value failed (its role: an argument, a result, a captured variable, a queue item), its type, the path of
/// members down to what could not be written, and what to do. The serializer's own exception stays as the inner
/// exception; its wording stays out of the message.
/// </summary>
internal static class TravelErrors
{
    private const string PathKey = "Multiprocessing.MemberPath";

    /// <summary>Marks the exceptions made here, which already say everything (they are passed on, not wrapped again).</summary>
    private const string ExplainedKey = "Multiprocessing.Explained";

    /// <summary>Whether <paramref name="error"/> is one of this class's explanations.</summary>
    public static bool IsExplained(Exception error) => error is SerializationException && error.Data.Contains(ExplainedKey);

    private static SerializationException Explained(string message, Exception inner)
    {
        var error = new SerializationException(message, inner);
        error.Data[ExplainedKey] = true;
        return error;
    }

    /// <summary>
    /// Used as an exception filter by the formatters that wrap user types: records that the failure passed through a
    /// <paramref name="type"/> (innermost first). Returns false, so the exception goes on unchanged.
    /// </summary>
    public static bool Passing(Exception error, Type type)
    {
        var innermost = Innermost(error);
        if (IsExplained(innermost)) return false;
        if (innermost.Data[PathKey] is not List<Type> path) innermost.Data[PathKey] = path = [];
        if (path.Count == 0 || path[^1] != type) path.Add(type);
        return false;
    }

    /// <summary>Clears the member path noted on <paramref name="error"/> (before the same value is written again to find the culprit).</summary>
    public static void Forget(Exception error) => Innermost(error).Data.Remove(PathKey);

    /// <summary>The exception for <paramref name="role"/> (e.g. "The argument", "The captured variable 'x'") of <paramref name="type"/> failing to be written.</summary>
    public static SerializationException CannotSend(string role, Type type, Exception error)
    {
        if (IsExplained(error)) return (SerializationException)error;
        var innermost = Innermost(error);
        var types = PathTypes(innermost, type);
        var (reason, advice) = Explain(innermost, type, types);
        return Explained($"{role} ({Friendly(type)}) cannot travel to another process: {Path(innermost, types)}{reason} {advice}".TrimEnd(), error);
    }

    /// <summary>The exception for <paramref name="role"/> of <paramref name="type"/> failing to be read.</summary>
    public static SerializationException CannotRead(string role, Type type, Exception error)
    {
        if (IsExplained(error)) return (SerializationException)error;
        var innermost = Innermost(error);
        if (innermost is SerializationException refused) return Explained($"{role} ({Friendly(type)}) could not be read: {refused.Message}", error);
        var types = PathTypes(innermost, type);
        var (reason, advice) = Explain(innermost, type, types);
        return Explained($"{role} ({Friendly(type)}) could not be read: {Path(innermost, types)}{reason} {advice}".TrimEnd(), error);
    }

    /// <summary>The exception under the serializer's wrappers (the one that says what went wrong).</summary>
    public static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null && e is MessagePackSerializationException or TypeInitializationException or TargetInvocationException or AggregateException)
            e = e.InnerException;
        return e;
    }

    /// <summary>The user types a failure passed through, outermost first (containers such as arrays and lists left out).</summary>
    private static List<Type> PathTypes(Exception innermost, Type root)
    {
        var types = innermost.Data[PathKey] is List<Type> inward ? Enumerable.Reverse(inward).Where(t => !IsContainer(t)).ToList() : [];
        if (!IsContainer(root) && (types.Count == 0 || (types[0] != root && !types[0].IsAssignableFrom(root)))) types.Insert(0, root);
        return types;
    }

    private static bool IsContainer(Type type) =>
        type.IsArray || (type.IsGenericType && type.Namespace is "System.Collections.Generic" or "System.Collections.Immutable" or "System.Collections.ObjectModel")
        || type.FullName?.StartsWith("System.ValueTuple`", StringComparison.Ordinal) == true;

    /// <summary>"at Order.Lines → Line.Product: " from the types the failure passed through, outermost first.</summary>
    private static string Path(Exception innermost, List<Type> types)
    {
        if (types.Count == 0) return "";
        var steps = new List<string>();
        for (var i = 0; i + 1 < types.Count; i++)
            if (MemberLeadingTo(types[i], types[i + 1]) is { } member) steps.Add($"{Friendly(types[i])}.{member}");
        if (FailingType(innermost) is { } failing && MemberLeadingTo(types[^1], failing) is { } last) steps.Add($"{Friendly(types[^1])}.{last}");
        return steps.Count == 0 ? "" : $"at {string.Join(" → ", steps)}: ";
    }

    /// <summary>The member of <paramref name="owner"/> whose type is, or holds, <paramref name="target"/> (an <see cref="object"/> member when no other fits).</summary>
    private static string? MemberLeadingTo(Type owner, Type target)
    {
        const BindingFlags all = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        var members = owner.GetProperties(all).Where(p => p.GetIndexParameters().Length == 0).Select(p => (p.Name, Type: p.PropertyType))
            .Concat(owner.GetFields(all).Where(f => !f.Name.Contains('<', StringComparison.Ordinal)).Select(f => (f.Name, Type: f.FieldType)))
            .ToList();
        foreach (var (name, type) in members)
            if (Holds(type, target)) return name;
        foreach (var (name, type) in members)
            if (type == typeof(object)) return name;
        return null;
    }

    private static bool Holds(Type member, Type target) =>
        member == target || (member != typeof(object) && member.IsAssignableFrom(target)) || (member.IsArray && Holds(member.GetElementType()!, target))
        || (member.IsGenericType && member.GetGenericArguments().Any(a => Holds(a, target)));

    /// <summary>The type the serializer could not handle, when its message names one.</summary>
    private static Type? FailingType(Exception innermost)
    {
        var message = innermost.Message;
        string? name = null;
        var registered = message.IndexOf(" is not registered in resolver", StringComparison.Ordinal);
        if (registered > 0) name = message[..registered];
        var matched = message.IndexOf("can't find matched constructor. type:", StringComparison.Ordinal);
        if (matched >= 0) name = message[(matched + "can't find matched constructor. type:".Length)..].Trim();
        if (name is null) return null;
        return AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetType(name, throwOnError: false)).FirstOrDefault(t => t is not null);
    }

    /// <summary>Why a value of <paramref name="type"/> belongs to this process and cannot exist in another; null when it can travel.</summary>
    public static string? ResourceReason(Type type) => type switch
    {
        _ when type.IsPointer || type == typeof(IntPtr) || type == typeof(UIntPtr) => "a raw pointer means nothing in another process",
        _ when typeof(Stream).IsAssignableFrom(type) => "a stream is an open handle in this process",
        _ when typeof(System.Net.Sockets.Socket).IsAssignableFrom(type) => "a socket is an open connection of this process",
        _ when typeof(System.Net.Http.HttpMessageInvoker).IsAssignableFrom(type) => "an HTTP client holds this process's connections",
        _ when typeof(System.Runtime.InteropServices.SafeHandle).IsAssignableFrom(type) => "a handle belongs to this process",
        _ when typeof(WaitHandle).IsAssignableFrom(type) => "a wait handle belongs to this process (use ProcessEvent, ProcessLock or ProcessSemaphore)",
        _ when typeof(Thread).IsAssignableFrom(type) => "a thread belongs to this process",
        _ when typeof(Task).IsAssignableFrom(type) => "a task is a computation running in this process",
        _ when typeof(Timer).IsAssignableFrom(type) || typeof(ITimer).IsAssignableFrom(type) => "a timer runs in this process",
        _ when type == typeof(CancellationTokenSource) || type == typeof(CancellationToken) => "a cancellation token is tied to this process (the pool cancels workers for you)",
        _ when typeof(System.Diagnostics.Process).IsAssignableFrom(type) => "a process object is a handle of this process",
        _ when typeof(TextReader).IsAssignableFrom(type) || typeof(TextWriter).IsAssignableFrom(type) => "a reader or writer wraps an open handle of this process",
        _ when typeof(System.Reflection.Emit.DynamicMethod).IsAssignableFrom(type) => "a dynamic method lives only in this process",
        _ => null,
    };

    private static (string Reason, string Advice) Explain(Exception innermost, Type type, List<Type> path)
    {
        var failing = FailingType(innermost);
        var message = innermost.Message;
        if (typeof(Exception).IsAssignableFrom(type))
            return ("an exception is not data.", "Throw it instead (the caller gets it rethrown with its type and message), or send its message.");
        // The outermost part of the value that belongs to this process says it best (an HttpClient, not its timer).
        foreach (var part in path.Append(failing))
            if (part is not null && ResourceReason(part) is { } why)
                return ($"it holds a {Friendly(part)}: {why}.", typeof(Stream).IsAssignableFrom(part)
                    ? "Send the bytes (a byte[]) or a path, and open the stream on the other side."
                    : "Create it on the other side, and send the data it is made from.");
        if (failing is not null && typeof(Delegate).IsAssignableFrom(failing) || innermost is TypeInitializationException)
            return ("it holds a delegate.", "A function travels only as the function of a call; pass the data it needs instead.");
        if (message.Contains(" is not registered in resolver", StringComparison.Ordinal))
            return ($"{Friendly(failing) ?? "a member"} has no data form (an interface or abstract type with no values to write, or an object of the runtime).",
                "Send the data it is built from and create it on the other side (a client, a connection, a timer belongs to one process).");
        if (message.Contains("can't find matched constructor", StringComparison.Ordinal))
            return ($"{Friendly(failing) ?? Friendly(type)} has no constructor the serializer can call.",
                "Give it a public parameterless constructor, or a public constructor whose parameters are named after its public properties.");
        if (innermost is SerializationException own) return (own.Message, "");
        return ($"{message.TrimEnd('.')}.", "Send plain data (numbers, strings, records, arrays, lists) or the library's shared objects.");
    }

    /// <summary>A type as C# writes it: List&lt;Order&gt;, not List`1.</summary>
    public static string? Friendly(Type? type)
    {
        if (type is null) return null;
        if (type.IsArray) return Friendly(type.GetElementType()) + "[]";
        if (!type.IsGenericType) return type.Name;
        var name = type.Name[..type.Name.IndexOf('`', StringComparison.Ordinal)];
        return $"{name}<{string.Join(", ", type.GetGenericArguments().Select(Friendly))}>";
    }
}
