using MessagePack;
using MessagePack.Formatters;

namespace Multiprocessing;

/// <summary>
/// How queues and pipe ends travel: by the names of their shared rings. Deserializing attaches to the same rings,
/// so a worker puts into (or reads from) the parent's queue. An attached handle never removes the rings.
/// </summary>
internal static class QueueHandles
{
    /// <summary>The provider registered in <see cref="HandleResolver"/>: a formatter for exactly <paramref name="type"/>, or null.</summary>
    public static object? FormatterFor(Type type)
    {
        if (!type.IsGenericType) return null;
        var definition = type.GetGenericTypeDefinition();
        var formatter = definition == typeof(ProcessQueue<>) ? typeof(QueueFormatter<>)
            : definition == typeof(JoinableProcessQueue<>) ? typeof(JoinableQueueFormatter<>)
            : definition == typeof(Connection<>) ? typeof(ConnectionFormatter<>)
            : null;
        return formatter is null ? null : Activator.CreateInstance(formatter.MakeGenericType(type.GetGenericArguments()));
    }

    private sealed class QueueFormatter<T> : IMessagePackFormatter<ProcessQueue<T>?>
    {
        public void Serialize(ref MessagePackWriter writer, ProcessQueue<T>? value, MessagePackSerializerOptions options)
        {
            if (value is null) writer.WriteNil();
            else writer.Write(value.Name);
        }

        public ProcessQueue<T>? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            reader.TryReadNil() ? null : ProcessQueue<T>.FromRing(SharedRing.Attach(reader.ReadString()!));
    }

    private sealed class JoinableQueueFormatter<T> : IMessagePackFormatter<JoinableProcessQueue<T>?>
    {
        public void Serialize(ref MessagePackWriter writer, JoinableProcessQueue<T>? value, MessagePackSerializerOptions options)
        {
            if (value is null) writer.WriteNil();
            else writer.Write(value.Name);
        }

        public JoinableProcessQueue<T>? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            reader.TryReadNil() ? null : JoinableProcessQueue<T>.FromRing(SharedRing.Attach(reader.ReadString()!));
    }

    private sealed class ConnectionFormatter<T> : IMessagePackFormatter<Connection<T>?>
    {
        public void Serialize(ref MessagePackWriter writer, Connection<T>? value, MessagePackSerializerOptions options)
        {
            if (value is null) { writer.WriteNil(); return; }
            if (value.IsClosed) throw new SerializationException("A closed Connection cannot be sent to another process.");
            writer.WriteArrayHeader(2);
            if (value.SendRing is { } send) writer.Write(send.Name); else writer.WriteNil();
            if (value.ReceiveRing is { } receive) writer.Write(receive.Name); else writer.WriteNil();
        }

        public Connection<T>? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil()) return null;
            if (reader.ReadArrayHeader() != 2) throw new SerializationException("Malformed Connection handle.");
            var sendName = reader.TryReadNil() ? null : reader.ReadString();
            var receiveName = reader.TryReadNil() ? null : reader.ReadString();
            var send = sendName is null ? null : SharedRing.Attach(sendName);
            SharedRing? receive;
            try
            {
                receive = receiveName is null ? null : SharedRing.Attach(receiveName);
            }
            catch
            {
                send?.Dispose();
                throw;
            }
            if (send is not null) send.ForgetProducersOnExit = false;
            return new Connection<T>(send, receive, new PipeOwnership(send, receive, 1));
        }
    }
}
