using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// Writes a class that can take part in a cycle (a tree node with a parent link, a doubly linked list's node) the way
/// pickle does: by its fields, as an array in declaration order, and reads it by creating the object first, without
/// running a constructor, publishing it to the reference numbering (<see cref="ReferenceFormatter{T}"/>), and only then
/// reading its fields. A field that refers back to an object still being read then finds it, so the cycle arrives as
/// a cycle. MessagePack's own object formatter creates an object from its members' values, after them, which cannot
/// rebuild a cycle; it stays in use for every type that cannot hold a reference back to itself (see
/// <see cref="CycleTypes.Rebuilds"/>).
/// </summary>
internal sealed class CycleFormatter<T> : IMessagePackFormatter<T> where T : class
{
    private static readonly FieldSlot<T>[] Fields = CycleTypes.FieldsOf(typeof(T))
        .Select(f => (FieldSlot<T>)Activator.CreateInstance(typeof(FieldSlot<,>).MakeGenericType(typeof(T), f.FieldType), f)!)
        .ToArray();

    public void Serialize(ref MessagePackWriter writer, T? value, MessagePackSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }
        writer.WriteArrayHeader(Fields.Length);
        foreach (var field in Fields) field.Write(ref writer, value, options);
    }

    public T Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.TryReadNil()) return null!;
        var count = reader.ReadArrayHeader();
        if (count != Fields.Length)
            throw new SerializationException($"A {TravelErrors.Friendly(typeof(T))} arrived with {count} fields where this build's has {Fields.Length}; both ends must run the same build.");
        var value = (T)RuntimeHelpers.GetUninitializedObject(typeof(T));
        References.Reading.Publish(value);
        options.Security.DepthStep(ref reader);
        try
        {
            foreach (var field in Fields) field.Read(ref reader, value, options);
        }
        finally
        {
            reader.Depth--;
        }
        return value;
    }
}

/// <summary>One field of <typeparamref name="TOwner"/>, read and written through typed accessors (no boxing).</summary>
internal abstract class FieldSlot<TOwner>
{
    public abstract void Write(ref MessagePackWriter writer, TOwner owner, MessagePackSerializerOptions options);

    public abstract void Read(ref MessagePackReader reader, TOwner owner, MessagePackSerializerOptions options);
}

internal sealed class FieldSlot<TOwner, TField>(FieldInfo field) : FieldSlot<TOwner>
{
    private readonly Func<TOwner, TField> _get = Accessor<Func<TOwner, TField>>(field, typeof(TField), [typeof(TOwner)], OpCodes.Ldfld);

    // A readonly field (a record's, an init-only property's) is set as pickle sets __dict__: by the runtime, not a constructor.
    private readonly Action<TOwner, TField> _set = Accessor<Action<TOwner, TField>>(field, typeof(void), [typeof(TOwner), typeof(TField)], OpCodes.Stfld);

    public override void Write(ref MessagePackWriter writer, TOwner owner, MessagePackSerializerOptions options) =>
        options.Resolver.GetFormatterWithVerify<TField>().Serialize(ref writer, _get(owner), options);

    public override void Read(ref MessagePackReader reader, TOwner owner, MessagePackSerializerOptions options) =>
        _set(owner, options.Resolver.GetFormatterWithVerify<TField>().Deserialize(ref reader, options));

    private static TDelegate Accessor<TDelegate>(FieldInfo field, Type returns, Type[] parameters, OpCode op) where TDelegate : Delegate
    {
        var method = new DynamicMethod($"{op.Name}_{field.Name}", returns, parameters, typeof(TOwner).Module, skipVisibility: true);
        var il = method.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        if (parameters.Length == 2) il.Emit(OpCodes.Ldarg_1);
        il.Emit(op, field);
        il.Emit(OpCodes.Ret);
        return method.CreateDelegate<TDelegate>();
    }
}

/// <summary>Which classes are written by <see cref="CycleFormatter{T}"/>, and their fields.</summary>
internal static class CycleTypes
{
    private const BindingFlags Declared = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    private static readonly ConcurrentDictionary<Type, bool> Known = new();

    /// <summary>
    /// Whether values of exactly <paramref name="type"/> are written field by field and created before their fields,
    /// so that a cycle closing through one of them can be rebuilt: the application's own classes (not the runtime's,
    /// not collections, exceptions, delegates or the library's handles, nor types that chose a MessagePack contract)
    /// whose fields can lead back to a <paramref name="type"/>, through members, collections' elements, or an
    /// <see cref="object"/> or interface member.
    /// </summary>
    public static bool Rebuilds(Type type) => Known.GetOrAdd(type, static t => Eligible(t) && LeadsBack(t));

    /// <summary>The fields that make up a <paramref name="type"/>'s value, base class first, in declaration order.</summary>
    public static List<FieldInfo> FieldsOf(Type type)
    {
        var chain = new List<Type>();
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType) chain.Add(t);
        chain.Reverse();
        var fields = new List<FieldInfo>();
        foreach (var t in chain)
        {
            var events = t.GetEvents(Declared).Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var field in t.GetFields(Declared).OrderBy(f => f.MetadataToken))
            {
                // An event's subscribers are this process's delegates; members marked [IgnoreMember] or [IgnoreDataMember] stay behind, as with MessagePack.
                if (events.Contains(field.Name) || Ignored(field) || Ignored(BackedProperty(t, field))) continue;
                fields.Add(field);
            }
        }
        return fields;
    }

    private static bool Ignored(MemberInfo? member) =>
        member is not null && (member.IsDefined(typeof(IgnoreMemberAttribute)) || member.IsDefined(typeof(System.Runtime.Serialization.IgnoreDataMemberAttribute)));

    /// <summary>The auto-property whose backing field <paramref name="field"/> is ("&lt;Name&gt;k__BackingField").</summary>
    private static PropertyInfo? BackedProperty(Type owner, FieldInfo field)
    {
        var name = field.Name;
        if (!name.StartsWith('<')) return null;
        var end = name.IndexOf('>', StringComparison.Ordinal);
        if (end <= 1) return null;
        var property = name[1..end];
        return owner.GetProperties(Declared).FirstOrDefault(p => p.Name == property);
    }

    private static bool Eligible(Type type) =>
        type.IsClass && !type.IsAbstract && !type.IsArray && !type.ContainsGenericParameters && type != typeof(string)
        && !IsRuntimeType(type)
        && !typeof(Delegate).IsAssignableFrom(type) && !typeof(Exception).IsAssignableFrom(type)
        && !typeof(System.Collections.IEnumerable).IsAssignableFrom(type)
        && !type.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false)
        && !type.IsDefined(typeof(MessagePackObjectAttribute), inherit: true)
        && !type.IsDefined(typeof(MessagePackFormatterAttribute), inherit: true)
        && !HandleResolver.IsHandleType(type) && !typeof(IManagerProxy).IsAssignableFrom(type)
        && FieldsOf(type).All(f => !f.FieldType.IsPointer && !f.FieldType.IsByRefLike && !f.FieldType.IsFunctionPointer);

    private static bool IsRuntimeType(Type type) =>
        type.Namespace is { } ns && (ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal) || ns.StartsWith("Microsoft.", StringComparison.Ordinal) || ns.StartsWith("MessagePack", StringComparison.Ordinal));

    /// <summary>Whether a field of <paramref name="type"/>, or of what it holds, can refer to a <paramref name="type"/>.</summary>
    private static bool LeadsBack(Type type)
    {
        var seen = new HashSet<Type>();
        var pending = new Stack<Type>(FieldsOf(type).Select(f => f.FieldType));
        while (pending.TryPop(out var member))
        {
            if (!seen.Add(member)) continue;
            // An object or interface member of the application's own may hold anything (a runtime type's interface,
            // such as IReadOnlyList<T>, holds what its type arguments say).
            if (member == typeof(object) || member.IsAssignableFrom(type) || (member.IsInterface && !IsRuntimeType(member))) return true;
            if (member.IsArray) pending.Push(member.GetElementType()!);
            if (member.IsGenericType) foreach (var argument in member.GetGenericArguments()) pending.Push(argument);
            if (!member.IsPrimitive && !member.IsEnum && !member.IsArray && !IsRuntimeType(member))
                foreach (var field in FieldsOf(member)) pending.Push(field.FieldType);
        }
        return false;
    }
}
