using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// Arrays of unmanaged values (numbers, tuples and structs of numbers, <see cref="DateTime"/>,
/// <see cref="Guid"/>) travel as one block of memory, a MessagePack extension, instead of value by
/// value: a copy on each side instead of a formatter call per element. Parent and workers run the
/// same build on the same machine, so the layout is the same on both sides.
/// </summary>
internal sealed class BlittableArrayFormatter<T> : IMessagePackFormatter<T[]?> where T : unmanaged
{
    /// <summary>The MessagePack extension type code of a raw array.</summary>
    public const sbyte ExtensionType = 42;

    public static readonly BlittableArrayFormatter<T> Instance = new();

    public void Serialize(ref MessagePackWriter writer, T[]? value, MessagePackSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }
        var bytes = MemoryMarshal.AsBytes(value.AsSpan());
        writer.WriteExtensionFormatHeader(new ExtensionHeader(ExtensionType, bytes.Length));
        writer.WriteRaw(bytes);
    }

    public T[]? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.TryReadNil()) return null;
        var header = reader.ReadExtensionFormatHeader();
        if (header.TypeCode != ExtensionType || header.Length % Unsafe.SizeOf<T>() != 0)
            throw new MessagePackSerializationException($"Expected a raw {typeof(T).Name}[] block, found extension {header.TypeCode} of {header.Length} bytes.");
        var result = new T[header.Length / Unsafe.SizeOf<T>()];
        var data = reader.ReadRaw(header.Length);
        System.Buffers.BuffersExtensions.CopyTo(data, MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>The formatter for <paramref name="arrayType"/> when it is an array of unmanaged values (byte arrays keep MessagePack's bin format).</summary>
    public static object? For(Type arrayType)
    {
        if (!arrayType.IsSZArray) return null;
        var element = arrayType.GetElementType()!;
        if (element == typeof(byte) || !IsUnmanaged(element)) return null;
        return typeof(BlittableArrayFormatter<>).MakeGenericType(element).GetField(nameof(Instance))!.GetValue(null);
    }

    private static bool IsUnmanaged(Type type)
    {
        if (!type.IsValueType || type.IsGenericTypeDefinition) return false;
        try
        {
            return !(bool)typeof(RuntimeHelpers).GetMethod(nameof(RuntimeHelpers.IsReferenceOrContainsReferences))!
                .MakeGenericMethod(type).Invoke(null, null)!;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
