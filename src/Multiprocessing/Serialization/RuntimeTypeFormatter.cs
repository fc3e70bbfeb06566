using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// Keeps a value's runtime type where its declared type is wider (<see cref="object"/>, an interface, an
/// abstract or unsealed class), as pickle does for Python: a <c>Dog</c> passed as an <c>Animal</c> arrives as
/// a <c>Dog</c>, a record returned as <c>object</c> arrives as that record. A value whose type is exactly the
/// declared one is written as before (a type check, nothing more); a wider one is written as an extension
/// holding its type (a short code for common value types, else its assembly-qualified name) and then the value
/// as that type. Between a program and its own workers the type is loaded by name; from a manager (data that came
/// over a socket) only types the program allowed with <see cref="RemoteTypes"/> are created.
/// </summary>
/// <param name="declared">The declared type's own formatter; null for an abstract class, whose values are all of wider types.</param>
internal sealed class RuntimeTypeFormatter<T>(IMessagePackFormatter<T>? declared) : IMessagePackFormatter<T>
{
    public void Serialize(ref MessagePackWriter writer, T value, MessagePackSerializerOptions options)
    {
        if (value is null && declared is null) writer.WriteNil();
        // A manager proxy travels as the handle its declared type's formatter writes, never by its class's name.
        else if (declared is not null && (value is null || value.GetType() == typeof(T) || value is string or bool or IManagerProxy))
            declared.Serialize(ref writer, value, options);
        else RuntimeTypes.Write(ref writer, value!, options);
    }

    public T Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.NextMessagePackType == MessagePackType.Extension && RuntimeTypes.IsNext(ref reader))
            return (T)RuntimeTypes.Read(ref reader, typeof(T), options)!;
        if (declared is not null) return declared.Deserialize(ref reader, options);
        if (reader.TryReadNil()) return default!;
        throw new SerializationException($"A value declared as the abstract {typeof(T).FullName} arrived without its runtime type; both ends must run this library's same build.");
    }
}

/// <summary>The wire form of <see cref="RuntimeTypeFormatter{T}"/>: extension 0x54, then the type key, then the value.</summary>
internal static class RuntimeTypes
{
    public const sbyte ExtensionCode = 0x54;

    // Value types whose plain MessagePack form reads back as another type under 'object' (5 comes back a byte):
    // a one-byte code each instead of a name.
    private static readonly Type[] Coded =
    [
        typeof(int), typeof(long), typeof(short), typeof(sbyte), typeof(byte), typeof(ushort), typeof(uint), typeof(ulong),
        typeof(float), typeof(double), typeof(decimal), typeof(char), typeof(DateTime), typeof(DateTimeOffset), typeof(TimeSpan), typeof(Guid),
    ];

    private static readonly Dictionary<Type, int> Codes = Coded.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i + 1);
    private static readonly ConcurrentDictionary<string, Type> Loaded = new();

    public static bool IsNext(ref MessagePackReader reader)
    {
        var peek = reader.CreatePeekReader();
        return peek.ReadExtensionFormatHeader().TypeCode == ExtensionCode;
    }

    public static void Write(ref MessagePackWriter writer, object value, MessagePackSerializerOptions options)
    {
        var type = value.GetType();
        try
        {
            WriteAs(ref writer, value, type, options);
        }
        catch (Exception e) when (TravelErrors.Passing(e, type))
        {
            throw; // never taken: the filter notes the runtime type on the error's member path
        }
    }

    private static void WriteAs(ref MessagePackWriter writer, object value, Type type, MessagePackSerializerOptions options)
    {
        // The body is written first on its own: an extension's length comes before it. (Nested wide values
        // write their own bodies meanwhile, so each gets a buffer.)
        var body = new ArrayBufferWriter<byte>(256);
        var inner = new MessagePackWriter(body);
        if (Codes.TryGetValue(type, out var code)) inner.Write(code);
        else inner.Write(DelegateShipper.TypeName(type));
        inner.Flush();
        References.PassThroughNext(DepthGuardResolver.KeepsIdentity(type));
        try
        {
            MessagePackSerializer.Serialize(type, body, value, options);
        }
        finally
        {
            References.PassThroughNext(false);
        }
        writer.WriteExtensionFormatHeader(new ExtensionHeader(ExtensionCode, (uint)body.WrittenCount));
        writer.WriteRaw(body.WrittenSpan);
    }

    public static object? Read(ref MessagePackReader reader, Type declared, MessagePackSerializerOptions options)
    {
        reader.ReadExtensionFormatHeader();
        Type type;
        if (reader.NextMessagePackType == MessagePackType.Integer)
        {
            var code = reader.ReadInt32();
            if (code < 1 || code > Coded.Length) throw new SerializationException($"A value names runtime type code {code}, which this version does not know; both ends must run the same build.");
            type = Coded[code - 1];
        }
        else
        {
            var name = reader.ReadString() ?? throw new SerializationException("A value names no runtime type.");
            type = Load(name, declared, untrusted: options.Security == MessagePackSecurity.UntrustedData);
        }
        if (!declared.IsAssignableFrom(type))
            throw new SerializationException($"A value of type {type.FullName} arrived where a {declared.FullName} was expected; it is not one. Both ends must agree on the type.");
        References.PassThroughNext(DepthGuardResolver.KeepsIdentity(type));
        try
        {
            return MessagePackSerializer.Deserialize(type, ref reader, options);
        }
        finally
        {
            References.PassThroughNext(false);
        }
    }

    private static Type? LoadedOnly(string name)
    {
        try
        {
            return Type.GetType(name,
                assemblyName => AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => AssemblyName.ReferenceMatchesDefinition(assemblyName, a.GetName())),
                (assembly, typeName, ignoreCase) => assembly?.GetType(typeName, throwOnError: false, ignoreCase),
                throwOnError: false);
        }
        catch (Exception e) when (e is ArgumentException or IOException or BadImageFormatException or TypeLoadException)
        {
            return null; // a malformed name from a peer is a type this process does not know
        }
    }

    private static Type Load(string name, Type declared, bool untrusted)
    {
        // Only names that load are remembered: names from a peer must not grow the cache without bound. A name
        // that crossed a socket is looked up only among the assemblies already loaded: a peer's bytes never make
        // this process load an assembly (and run its initializers) before the allowed-types check below.
        if (!Loaded.TryGetValue(name, out var type) && (type = untrusted ? LoadedOnly(name) : Type.GetType(name, throwOnError: false)) is not null)
            Loaded[name] = type;
        if (type is null)
            throw new SerializationException($"A value of type '{name}' arrived as a {declared.FullName}, and this process cannot load that type. " +
                "Both ends must run the same build (the type's assembly must be part of the application).");
        if (untrusted && !RemoteTypes.IsAllowed(type))
            throw new SerializationException($"A value of type {type.FullName} arrived from a manager as a {declared.FullName}, and this process has not allowed " +
                $"that type to be created from data that crossed a socket. If you trust it, call RemoteTypes.Allow<{type.Name}>() at startup, in every process that reads it.");
        return type;
    }
}
