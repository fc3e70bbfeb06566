using System.Buffers;
using MessagePack;

namespace Multiprocessing;

// Formatter<T>: the default serializer's formatter of each item type, cached.
internal sealed unsafe partial class SharedRing
{
    /// <summary>The default serializer's formatters, called directly: the per-call setup of the facade costs more than a small item.</summary>
    private static class Formatter<T>
    {
        private static MessagePack.Formatters.IMessagePackFormatter<T>? _instance;

        private static MessagePack.Formatters.IMessagePackFormatter<T> Instance => _instance ??= Find();

        private static MessagePack.Formatters.IMessagePackFormatter<T> Find()
        {
            try
            {
                return MessagePackObjectSerializer.Options.Resolver.GetFormatterWithVerify<T>();
            }
            catch (Exception e) when (e is MessagePackSerializationException or TypeInitializationException or FormatterNotRegisteredException)
            {
                throw new SerializationException(
                    $"{typeof(T)} cannot be an item of a queue or pipe: the serializer has no way to write it ({(e.InnerException ?? e).Message}). " +
                    "Use a record, class or struct with public members, a tuple, an array or a collection of such.", e);
            }
        }

        public static void Serialize(IBufferWriter<byte> output, T value, string role)
        {
            var writer = new MessagePackWriter(output);
            try
            {
                Instance.Serialize(ref writer, value, MessagePackObjectSerializer.Options);
            }
            catch (Exception e) when (!TravelErrors.IsExplained(e))
            {
                // Everything a formatter throws is about the value (a stream's timeout, a delegate's initializer...).
                throw TravelErrors.CannotSend(role, value?.GetType() ?? typeof(T), e);
            }
            writer.Flush();
        }

        public static T Deserialize(ReadOnlyMemory<byte> input)
        {
            var reader = new MessagePackReader(input);
            return Instance.Deserialize(ref reader, MessagePackObjectSerializer.Options);
        }
    }
}
