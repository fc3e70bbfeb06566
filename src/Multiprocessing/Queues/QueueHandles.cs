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
        var item = type.GetGenericArguments()[0];
        if (definition == typeof(ProcessQueue<>) || definition == typeof(JoinableProcessQueue<>))
        {
            // One formatter for both kinds of queue: each is its ring's name, and is rebuilt by its own FromRing.
            var fromRing = type.GetMethod("FromRing", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)!;
            var attach = Delegate.CreateDelegate(typeof(Func<,>).MakeGenericType(typeof(SharedRing), type), fromRing);
            return Activator.CreateInstance(typeof(QueueFormatter<,>).MakeGenericType(item, type), attach);
        }
        return definition == typeof(Connection<>) ? Activator.CreateInstance(typeof(ConnectionFormatter<>).MakeGenericType(item)) : null;
    }

    private sealed class QueueFormatter<T, TQueue>(Func<SharedRing, TQueue> fromRing) : IMessagePackFormatter<TQueue?> where TQueue : ProcessQueue<T>
    {
        public void Serialize(ref MessagePackWriter writer, TQueue? value, MessagePackSerializerOptions options)
        {
            if (value is null) writer.WriteNil();
            else writer.Write(value.Name);
        }

        public TQueue? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            reader.TryReadNil() ? null : fromRing(SharedRing.Attach(reader.ReadString()!));
    }

    private sealed class ConnectionFormatter<T> : IMessagePackFormatter<Connection<T>?>
    {
        public void Serialize(ref MessagePackWriter writer, Connection<T>? value, MessagePackSerializerOptions options)
        {
            if (value is null) { writer.WriteNil(); return; }
            if (value.IsSocket)
            {
                throw new SerializationException(
                    "A Connection made by a Listener or Connection.Connect is a socket of this process and cannot be sent to another process. " +
                    "Give the other process the listener's Address (and key) and let it connect itself, or use Pipe.Create for ends that travel.");
            }
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
