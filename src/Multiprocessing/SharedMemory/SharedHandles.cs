using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// How shared memory and the primitives travel: by handle (the block's name, and the shape where there is
/// one), never by value. Deserializing attaches to the same block, so a worker sees the parent's memory.
/// An attached handle never unlinks: only the creator's does.
/// </summary>
internal static class SharedHandles
{
    /// <summary>The provider registered in <see cref="HandleResolver"/>: a formatter for exactly <paramref name="type"/>, or null.</summary>
    public static object? FormatterFor(Type type)
    {
        if (type == typeof(SharedMemory)) return new NamedFormatter<SharedMemory>(m => m.Name, SharedMemory.Attach);
        if (type == typeof(ShareableList)) return new NamedFormatter<ShareableList>(l => l.Name, ShareableList.Attach);
        if (type == typeof(ProcessLock)) return new NamedFormatter<ProcessLock>(l => l.Name, n => new ProcessLock(SyncBlock.Attach(n)));
        if (type == typeof(ProcessRLock)) return new NamedFormatter<ProcessRLock>(l => l.Name, n => new ProcessRLock(SyncBlock.Attach(n)));
        if (type == typeof(ProcessSemaphore)) return new NamedFormatter<ProcessSemaphore>(s => s.Name, n => new ProcessSemaphore(SyncBlock.Attach(n)));
        if (type == typeof(ProcessEvent)) return new NamedFormatter<ProcessEvent>(e => e.Name, n => new ProcessEvent(SyncBlock.Attach(n)));
        if (type == typeof(ProcessBarrier)) return new NamedFormatter<ProcessBarrier>(b => b.Name, n => new ProcessBarrier(SyncBlock.Attach(n)));
        if (type == typeof(ProcessCondition)) return new ConditionFormatter();
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(SharedArray<>))
            return Activator.CreateInstance(typeof(SharedArrayFormatter<>).MakeGenericType(type.GetGenericArguments()));
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(SharedValue<>))
            return Activator.CreateInstance(typeof(SharedValueFormatter<>).MakeGenericType(type.GetGenericArguments()));
        return null;
    }

    private sealed class NamedFormatter<T>(Func<T, string> name, Func<string, T> attach) : IMessagePackFormatter<T?> where T : class
    {
        public void Serialize(ref MessagePackWriter writer, T? value, MessagePackSerializerOptions options)
        {
            if (value is null) writer.WriteNil();
            else writer.Write(name(value));
        }

        public T? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            reader.TryReadNil() ? null : attach(reader.ReadString()!);
    }

    private sealed class ConditionFormatter : IMessagePackFormatter<ProcessCondition?>
    {
        public void Serialize(ref MessagePackWriter writer, ProcessCondition? value, MessagePackSerializerOptions options)
        {
            if (value is null) { writer.WriteNil(); return; }
            writer.WriteArrayHeader(2);
            writer.Write(value.Name);
            writer.Write(value.Lock.Name);
        }

        public ProcessCondition? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil()) return null;
            if (reader.ReadArrayHeader() != 2) throw new SerializationException("Malformed ProcessCondition handle.");
            var block = SyncBlock.Attach(reader.ReadString()!);
            return new ProcessCondition(block, new ProcessLock(SyncBlock.Attach(reader.ReadString()!)));
        }
    }

    private sealed class SharedArrayFormatter<T> : IMessagePackFormatter<SharedArray<T>?> where T : unmanaged
    {
        public void Serialize(ref MessagePackWriter writer, SharedArray<T>? value, MessagePackSerializerOptions options)
        {
            if (value is null) { writer.WriteNil(); return; }
            writer.WriteArrayHeader(2);
            writer.Write(value.Name);
            writer.Write(value.Length);
        }

        public SharedArray<T>? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil()) return null;
            if (reader.ReadArrayHeader() != 2) throw new SerializationException("Malformed SharedArray handle.");
            var name = reader.ReadString()!;
            return SharedArray<T>.FromHandle(name, reader.ReadInt32());
        }
    }

    private sealed class SharedValueFormatter<T> : IMessagePackFormatter<SharedValue<T>?> where T : unmanaged
    {
        public void Serialize(ref MessagePackWriter writer, SharedValue<T>? value, MessagePackSerializerOptions options)
        {
            if (value is null) writer.WriteNil();
            else writer.Write(value.Name);
        }

        public SharedValue<T>? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            reader.TryReadNil() ? null : SharedValue<T>.FromHandle(reader.ReadString()!);
    }
}
