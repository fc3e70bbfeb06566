using System.Buffers;
using MessagePack;
using MessagePack.Resolvers;

namespace Multiprocessing;

/// <summary>
/// The default <see cref="ISerializer"/>: MessagePack-CSharp without attributes on user types
/// (records, classes and structs with public members, tuples, arrays, lists, dictionaries, enums,
/// <see cref="DateTime"/> with its kind, <see cref="Guid"/>, <see cref="decimal"/>, nullables).
/// The library's own shared objects (shared memory, queues, locks) are written as handles that
/// attach to the same object in the receiving process. It never uses the typeless resolver, so
/// bytes cannot name a type to instantiate. A value nested deeper than 500 levels (a cycle, or a very
/// long linked list) is refused with a <see cref="SerializationException"/>, never a stack overflow.
/// </summary>
public sealed class MessagePackObjectSerializer : ISerializer
{
    /// <summary>The options every instance uses: library handles first, then the standard and contractless resolvers, with a depth guard (see <see cref="DepthGuardResolver"/>).</summary>
    internal static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard.WithResolver(DepthGuardResolver.Instance);

    /// <inheritdoc />
    public void Serialize<T>(IBufferWriter<byte> writer, T value) => MessagePackSerializer.Serialize(writer, value, Options);

    /// <inheritdoc />
    public T Deserialize<T>(ReadOnlyMemory<byte> data) => MessagePackSerializer.Deserialize<T>(data, Options);

    /// <inheritdoc />
    public void Serialize(IBufferWriter<byte> writer, object? value, Type type) => MessagePackSerializer.Serialize(type, writer, value, Options);

    /// <inheritdoc />
    public object? Deserialize(ReadOnlyMemory<byte> data, Type type) => MessagePackSerializer.Deserialize(type, data, Options);
}
