using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.CompilerServices;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Ships a delegate to another process, like cloudpickle: the method travels as a reference
/// (declaring type, metadata token and module version id, which the child resolves in the same
/// build of the same assembly), and a closure's captured values travel by value, field by field.
/// Library objects captured by a closure travel by handle.
/// </summary>
internal static class DelegateShipper
{
    private enum TargetKind : byte { Stateless = 0, Closure = 1, Object = 2, Seen = 3 }
    private enum ValueKind : byte { Null = 0, Closure = 1, Delegate = 2, Value = 3 }

    private static readonly ConcurrentDictionary<(string Type, int Token, Guid Mvid, string? Generic), MethodInfo> Methods = new();
    private static readonly ConcurrentDictionary<Type, FieldInfo[]> Fields = new();
    private static readonly ConcurrentDictionary<string, Type> Types = new();

    /// <summary>True when the delegate carries no per-instance state, so one definition can be cached by the child.</summary>
    public static bool IsStateless(Delegate d) => d.Target is null || (IsCompilerGenerated(d.Target.GetType()) && InstanceFields(d.Target.GetType()).Length == 0);

    /// <summary>Writes the delegate; throws <see cref="SerializationException"/> naming what cannot travel.</summary>
    public static void Write(ref MessagePackWriter writer, Delegate d, ISerializer serializer)
    {
        var plan = new ShipPlan();
        plan.Visit(d);
        Write(ref writer, d, serializer, plan);
    }

    /// <summary>
    /// For every closure object reachable from a delegate, the fields that some reachable lambda
    /// uses (see <see cref="ClosureFields"/>), and the ids of the closures already written (lambdas of one
    /// scope share a closure object that may hold delegates pointing back at it, so the graph has cycles).
    /// </summary>
    private sealed class ShipPlan
    {
        public readonly Dictionary<object, HashSet<string>?> Fields = new(ReferenceEqualityComparer.Instance);
        public readonly Dictionary<object, int> Written = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<Delegate> _visited = new(ReferenceEqualityComparer.Instance);

        public void Visit(Delegate d)
        {
            if (!_visited.Add(d)) return;
            foreach (var single in d.GetInvocationList())
            {
                if (single.Target is { } target && IsCompilerGenerated(target.GetType()))
                    VisitClosure(target, ClosureFields.UsedBy(single.Method));
            }
        }

        private void VisitClosure(object closure, HashSet<(Type Type, string Field)>? used)
        {
            var key = ClosureFields.KeyOf(closure.GetType());
            var fields = InstanceFields(closure.GetType());
            var wanted = used is null ? null : fields.Where(f => used.Contains((key, f.Name))).Select(f => f.Name).ToHashSet();
            if (Fields.TryGetValue(closure, out var existing))
            {
                if (existing is null || (wanted is not null && wanted.IsSubsetOf(existing))) return;
                if (wanted is null) Fields[closure] = null;
                else existing.UnionWith(wanted);
            }
            else Fields[closure] = wanted;

            foreach (var f in fields)
            {
                if (wanted is not null && !wanted.Contains(f.Name)) continue;
                switch (f.GetValue(closure))
                {
                    case Delegate inner: Visit(inner); break;
                    case { } value when IsCompilerGenerated(value.GetType()): VisitClosure(value, used); break;
                }
            }
        }

        public bool Ships(object closure, FieldInfo field) =>
            !Fields.TryGetValue(closure, out var names) || names is null || names.Contains(field.Name);
    }

    private static void Write(ref MessagePackWriter writer, Delegate d, ISerializer serializer, ShipPlan seen)
    {
        if (d.GetInvocationList().Length != 1)
            throw new SerializationException($"A multicast delegate ({d.GetInvocationList().Length} targets) cannot be shipped to a worker; pass a single method or lambda.");
        var method = d.Method;
        if (method.DeclaringType is null || IsDynamicMethod(method))
            throw new SerializationException($"The method '{method.Name}' has no declaring type (a DynamicMethod or compiled expression); workers can only run methods that are declared in an assembly.");
        if (!WorkerCanLoad(method.DeclaringType.Assembly))
            throw new SerializationException($"The method '{method.DeclaringType.FullName}.{method.Name}' lives in a dynamic or in-memory assembly, which a worker process cannot load.");

        writer.WriteArrayHeader(6);
        writer.Write(TypeName(d.GetType()));
        writer.Write(TypeName(method.DeclaringType));
        writer.Write(method.MetadataToken);
        writer.Write(method.Module.ModuleVersionId.ToByteArray());
        if (method.IsGenericMethod)
        {
            var args = method.GetGenericArguments();
            writer.WriteArrayHeader(args.Length);
            foreach (var a in args) writer.Write(TypeName(a));
        }
        else writer.WriteNil();

        if (d.Target is null) writer.WriteNil();
        else WriteTarget(ref writer, d.Target, serializer, path: "", seen);
    }

    /// <summary>
    /// Whether a worker (this application started again) can load the assembly: not one emitted at run time,
    /// nor one loaded from bytes. An assembly without a file is fine in a single-file app, where this library
    /// has no file either and the worker loads the same bundle.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000", Justification = "An empty Location is what is tested: it tells a bundled assembly from one loaded from bytes.")]
    private static bool WorkerCanLoad(Assembly assembly) =>
        !assembly.IsDynamic && (!string.IsNullOrEmpty(assembly.Location) || string.IsNullOrEmpty(typeof(DelegateShipper).Assembly.Location));

    private static bool IsDynamicMethod(MethodInfo m) => m is System.Reflection.Emit.DynamicMethod || m.GetType().Name == "RTDynamicMethod";

    private static void WriteTarget(ref MessagePackWriter writer, object target, ISerializer serializer, string path, ShipPlan seen)
    {
        if (seen.Written.TryGetValue(target, out var id))
        {
            writer.WriteArrayHeader(2);
            writer.Write((byte)TargetKind.Seen);
            writer.Write(id);
            return;
        }
        var type = target.GetType();
        if (IsCompilerGenerated(type))
        {
            var fields = Array.FindAll(InstanceFields(type), f => seen.Ships(target, f));
            if (fields.Length == 0)
            {
                writer.WriteArrayHeader(2);
                writer.Write((byte)TargetKind.Stateless);
                writer.Write(TypeName(type));
                return;
            }
            seen.Written[target] = seen.Written.Count;
            writer.WriteArrayHeader(3);
            writer.Write((byte)TargetKind.Closure);
            writer.Write(TypeName(type));
            writer.WriteMapHeader(fields.Length);
            foreach (var f in fields)
            {
                writer.Write(f.Name);
                WriteValue(ref writer, f.GetValue(target), f.FieldType, serializer, path + CapturedName(f.Name), type, seen);
            }
            return;
        }

        Refuse(type, path.Length == 0 ? "the delegate's target (this)" : path, owner: null);
        writer.WriteArrayHeader(3);
        writer.Write((byte)TargetKind.Object);
        writer.Write(TypeName(type));
        writer.Write(SerializeValue(target, type, serializer, path.Length == 0 ? "the delegate's target (this)" : path));
    }

    private static void WriteValue(ref MessagePackWriter writer, object? value, Type declared, ISerializer serializer, string member, Type owner, ShipPlan seen)
    {
        Refuse(declared, member, owner);
        if (value is null)
        {
            writer.WriteArrayHeader(1);
            writer.Write((byte)ValueKind.Null);
            return;
        }
        var runtime = value.GetType();
        if (value is Delegate inner)
        {
            writer.WriteArrayHeader(2);
            writer.Write((byte)ValueKind.Delegate);
            try { Write(ref writer, inner, serializer, seen); }
            catch (SerializationException e) { throw new SerializationException($"The captured delegate '{member}' cannot travel to a worker: {e.Message}", e); }
            return;
        }
        if (IsCompilerGenerated(runtime))
        {
            writer.WriteArrayHeader(2);
            writer.Write((byte)ValueKind.Closure);
            WriteTarget(ref writer, value, serializer, member + ".", seen);
            return;
        }
        Refuse(runtime, member, owner);
        var asType = NeedsRuntimeType(declared, runtime) ? runtime : declared;
        writer.WriteArrayHeader(3);
        writer.Write((byte)ValueKind.Value);
        if (asType == declared) writer.WriteNil(); else writer.Write(TypeName(asType));
        writer.Write(SerializeValue(value, asType, serializer, member));
    }

    private static byte[] SerializeValue(object value, Type type, ISerializer serializer, string member)
    {
        try
        {
            var buffer = new ArrayBufferWriter<byte>();
            var s = HandleResolver.IsHandleType(type) ? Library : serializer;
            s.Serialize(buffer, value, type);
            return buffer.WrittenSpan.ToArray();
        }
        catch (Exception e)
        {
            throw TravelErrors.CannotSend($"The captured variable '{member}'", type, e);
        }
    }

    private static readonly MessagePackObjectSerializer Library = new();

    /// <summary>Types that hold an operating-system resource or a live computation: their state cannot exist in another process.</summary>
    private static void Refuse(Type type, string member, Type? owner)
    {
        if (TravelErrors.ResourceReason(type) is not { } why) return;
        var by = owner is null ? "" : $", captured by {Friendly(owner)}";
        throw new SerializationException(
            $"The captured variable '{member}' ({type.FullName}{by}) cannot travel to another process: {why}. " +
            "Open or create it inside the worker instead, or share it through a ProcessQueue, SharedMemory or a manager.");
    }

    private static string Friendly(Type closure) => closure.DeclaringType is { } d ? $"a lambda in {d.FullName}" : closure.FullName ?? closure.Name;

    /// <summary>Compiler names: "&lt;&gt;4__this" is this, "CS$&lt;&gt;8__locals1" an outer scope, others are the variable's own name.</summary>
    private static string CapturedName(string field) => field switch
    {
        "<>4__this" => "this",
        _ when field.StartsWith("CS$<>", StringComparison.Ordinal) => "(outer scope)",
        _ when field.StartsWith('<') && field.IndexOf('>') > 1 => field[1..field.IndexOf('>')],
        _ => field,
    };

    private static bool NeedsRuntimeType(Type declared, Type runtime)
    {
        if (declared == runtime) return false;
        // A manager proxy held as its interface travels as that interface: its own class may exist only in this process.
        if (HandleResolver.IsHandleType(declared) && HandleResolver.IsHandleType(runtime)) return false;
        if (declared == typeof(object)) return true;
        if (!(declared.IsAbstract || declared.IsInterface)) return false;
        // Collection interfaces have formatters of their own that keep the contents.
        if (declared.IsGenericType && declared.Namespace == "System.Collections.Generic") return false;
        return true;
    }

    /// <summary>Reads a delegate written by <c>Write</c>, resolving its method in this process.</summary>
    public static Delegate Read(ref MessagePackReader reader, ISerializer serializer) => Read(ref reader, serializer, []);

    private static Delegate Read(ref MessagePackReader reader, ISerializer serializer, List<object> seen)
    {
        var count = reader.ReadArrayHeader();
        if (count != 6) throw new SerializationException("Malformed delegate record.");
        var delegateType = ResolveType(reader.ReadString()!);
        var declaringName = reader.ReadString()!;
        var token = reader.ReadInt32();
        var mvid = new Guid(reader.ReadBytes()!.Value.ToArray());
        string? genericKey = null;
        Type[]? genericArgs = null;
        if (!reader.TryReadNil())
        {
            var n = reader.ReadArrayHeader();
            genericArgs = new Type[n];
            var names = new string[n];
            for (var i = 0; i < n; i++) { names[i] = reader.ReadString()!; genericArgs[i] = ResolveType(names[i]); }
            genericKey = string.Join("|", names);
        }
        var method = Methods.GetOrAdd((declaringName, token, mvid, genericKey), key => ResolveMethod(key.Type, key.Token, key.Mvid, genericArgs));
        object? target = reader.TryReadNil() ? null : ReadTarget(ref reader, serializer, seen);
        try
        {
            return method.CreateDelegate(delegateType, target);
        }
        catch (ArgumentException e)
        {
            throw new SerializationException($"Could not rebuild a {delegateType.Name} over {method.DeclaringType?.FullName}.{method.Name} in the worker: {e.Message}", e);
        }
    }

    private static MethodInfo ResolveMethod(string declaringName, int token, Guid mvid, Type[]? genericArgs)
    {
        var declaring = ResolveType(declaringName);
        if (declaring.Module.ModuleVersionId != mvid)
            throw new SerializationException(
                $"The worker loaded a different build of {declaring.Assembly.GetName().Name} than the parent (module version ids differ). Rebuild, and make sure parent and workers run from the same output folder.");
        var method = declaring.Module.ResolveMethod(token) as MethodInfo
            ?? throw new SerializationException($"Token 0x{token:x8} in {declaring.FullName} is not a method.");
        if (declaring.IsGenericType && !declaring.IsGenericTypeDefinition)
            method = (MethodInfo)MethodBase.GetMethodFromHandle(method.MethodHandle, declaring.TypeHandle)!;
        if (genericArgs is not null) method = method.MakeGenericMethod(genericArgs);
        return method;
    }

    private static object ReadTarget(ref MessagePackReader reader, ISerializer serializer, List<object> seen)
    {
        var count = reader.ReadArrayHeader();
        var kind = (TargetKind)reader.ReadByte();
        if (kind == TargetKind.Seen) return seen[reader.ReadInt32()];
        var type = ResolveType(reader.ReadString()!);
        switch (kind)
        {
            case TargetKind.Stateless:
                return RuntimeHelpers.GetUninitializedObject(type);
            case TargetKind.Closure:
            {
                var instance = RuntimeHelpers.GetUninitializedObject(type);
                seen.Add(instance);
                var fields = InstanceFields(type);
                var n = reader.ReadMapHeader();
                for (var i = 0; i < n; i++)
                {
                    var name = reader.ReadString();
                    var field = Array.Find(fields, f => f.Name == name)
                        ?? throw new SerializationException($"The closure {type.FullName} has no field {name} in the worker; parent and worker run different builds.");
                    field.SetValue(instance, ReadValue(ref reader, field.FieldType, serializer, seen));
                }
                return instance;
            }
            case TargetKind.Object:
                return Deserialize(reader.ReadBytes()!.Value, type, serializer)!;
            default:
                throw new SerializationException($"Unknown target kind {kind} (count {count}).");
        }
    }

    private static object? ReadValue(ref MessagePackReader reader, Type declared, ISerializer serializer, List<object> seen)
    {
        reader.ReadArrayHeader();
        switch ((ValueKind)reader.ReadByte())
        {
            case ValueKind.Null: return null;
            case ValueKind.Delegate: return Read(ref reader, serializer, seen);
            case ValueKind.Closure: return ReadTarget(ref reader, serializer, seen);
            case ValueKind.Value:
                var type = reader.TryReadNil() ? declared : ResolveType(reader.ReadString()!);
                return Deserialize(reader.ReadBytes()!.Value, type, serializer);
            default: throw new SerializationException("Malformed captured value.");
        }
    }

    private static object? Deserialize(ReadOnlySequence<byte> bytes, Type type, ISerializer serializer)
    {
        var s = HandleResolver.IsHandleType(type) ? Library : serializer;
        var memory = bytes.IsSingleSegment ? bytes.First : bytes.ToArray();
        return s.Deserialize(memory, type);
    }

    internal static string TypeName(Type type) => type.AssemblyQualifiedName
        ?? throw new SerializationException($"The type {type} has no assembly-qualified name (an open generic parameter?) and cannot be shipped.");

    internal static Type ResolveType(string name) => Types.GetOrAdd(name, static n =>
        Type.GetType(n, throwOnError: false) ?? throw new SerializationException(
            $"The worker could not load type '{n}'. Workers run with the parent's dependency files; make sure the assembly is part of the application (not loaded from a path at run time)."));

    private static bool IsCompilerGenerated(Type type) => type.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) && type.Name.StartsWith('<');

    private static FieldInfo[] InstanceFields(Type type) => Fields.GetOrAdd(type, static t => t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic));
}
