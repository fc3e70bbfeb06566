using System.Buffers;
using System.Buffers.Binary;
using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// Keeps shared references shared, as pickle's memo does: within one value, an object reached a second time is
/// written as a reference to its first occurrence (extension 0x52 holding its index) and read back as the same
/// object, so two slots that held one object hold one object on the other side too. An object reached again
/// while it is still being written is a cycle: it is written as a reference too when that object's class is one
/// created before its members are read (<see cref="CycleFormatter{T}"/>), so the cycle arrives as a cycle; through
/// any other object (a collection, a record MessagePack builds from its members' values, after them) it cannot be
/// rebuilt and is refused at once with a <see cref="SerializationException"/> that says so, instead of recursing
/// until the depth guard stops it. Writer and reader number objects in the same order (each
/// non-nil value of a wrapped, reference-typed declaration, on entering it), so no index is written for firsts.
/// </summary>
internal sealed class ReferenceFormatter<T>(IMessagePackFormatter<T> inner) : IMessagePackFormatter<T> where T : class
{
    public void Serialize(ref MessagePackWriter writer, T? value, MessagePackSerializerOptions options)
    {
        if (value is null || References.TakePassThrough())
        {
            inner.Serialize(ref writer, value!, options);
            return;
        }
        var scope = References.Writing;
        if (scope.Seen.TryGetValue(value, out var index))
        {
            // A cycle can be rebuilt only where it closes through an object created before its members are read.
            if (scope.Open.Contains(value) && !CycleTypes.Rebuilds(value.GetType()))
                throw new SerializationException(
                    $"The value refers back to itself through a {TravelErrors.Friendly(value.GetType())} (a cycle), and a {TravelErrors.Friendly(value.GetType())} " +
                    "is built from its contents after them (a collection, a type of the runtime, or a class with a MessagePack contract), so the cycle " +
                    "cannot be rebuilt in the other process. Cycles through your own classes travel (such as a node's parent link): close the cycle " +
                    "through one of them, or send a flat form, such as a list of the items with indexes where they refer to each other.");
            writer.WriteExtensionFormatHeader(new ExtensionHeader(References.ExtensionCode, 4));
            BinaryPrimitives.WriteInt32BigEndian(writer.GetSpan(4), index);
            writer.Advance(4);
            return;
        }
        scope.Seen.Add(value, scope.Seen.Count);
        scope.Open.Add(value);
        scope.Depth++;
        try
        {
            inner.Serialize(ref writer, value, options);
        }
        finally
        {
            scope.Open.Remove(value);
            if (--scope.Depth == 0) scope.Reset();
        }
    }

    public T Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.NextMessagePackType == MessagePackType.Nil || References.TakePassThrough()) return inner.Deserialize(ref reader, options);
        var scope = References.Reading;
        if (reader.NextMessagePackType == MessagePackType.Extension && References.IsNext(ref reader))
        {
            var header = reader.ReadExtensionFormatHeader();
            var bytes = reader.ReadRaw(header.Length);
            Span<byte> id = stackalloc byte[4];
            bytes.CopyTo(id);
            var index = BinaryPrimitives.ReadInt32BigEndian(id);
            if ((uint)index >= (uint)scope.Objects.Count || scope.Objects[index] is not T shared)
                throw new SerializationException($"A value refers to object {index}, which is not a {TravelErrors.Friendly(typeof(T))} read before it; the bytes are corrupt or come from another build.");
            return shared;
        }
        var slot = scope.Objects.Count;
        scope.Objects.Add(null);
        scope.Pending = slot;
        scope.Depth++;
        try
        {
            var value = inner.Deserialize(ref reader, options);
            scope.Objects[slot] = value;
            return value;
        }
        finally
        {
            if (--scope.Depth == 0) scope.Objects.Clear();
        }
    }
}

/// <summary>The per-thread numbering of objects within the value being written or read (see <see cref="ReferenceFormatter{T}"/>).</summary>
internal static class References
{
    public const sbyte ExtensionCode = 0x52;

    [ThreadStatic] private static WriteScope? _writing;
    [ThreadStatic] private static bool _passThrough;

    /// <summary>
    /// The next reference formatter on this thread writes or reads its value as is, without numbering it: the value
    /// is the one a wider declaration already numbered, now written as its runtime type (see <see cref="RuntimeTypes"/>).
    /// </summary>
    public static void PassThroughNext(bool on) => _passThrough = on;

    public static bool TakePassThrough()
    {
        if (!_passThrough) return false;
        _passThrough = false;
        return true;
    }
    [ThreadStatic] private static ReadScope? _reading;

    public static WriteScope Writing => _writing ??= new WriteScope();
    public static ReadScope Reading => _reading ??= new ReadScope();

    public static bool IsNext(ref MessagePackReader reader)
    {
        var peek = reader.CreatePeekReader();
        return peek.ReadExtensionFormatHeader().TypeCode == ExtensionCode;
    }

    internal sealed class WriteScope
    {
        public Dictionary<object, int> Seen { get; } = new(ReferenceEqualityComparer.Instance);
        public HashSet<object> Open { get; } = new(ReferenceEqualityComparer.Instance);
        public int Depth;

        public void Reset()
        {
            var large = Seen.Count > 4096;
            Seen.Clear();
            Open.Clear();
            // A large value's table is shrunk rather than kept at its size for the thread's life.
            if (large) Seen.TrimExcess(16);
        }
    }

    internal sealed class ReadScope
    {
        public List<object?> Objects { get; } = [];
        public int Depth;

        /// <summary>The number of the object being read whose formatter has not yet created it.</summary>
        public int Pending;

        /// <summary>
        /// Makes <paramref name="value"/>, just created and not yet filled, the object being read (see <see cref="CycleFormatter{T}"/>),
        /// so its members can refer back to it.
        /// </summary>
        public void Publish(object value)
        {
            if (Depth > 0) Objects[Pending] = value;
        }
    }
}
