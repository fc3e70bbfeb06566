using System.Buffers;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// How manager values become bytes: the library's MessagePack options (handles for shared objects,
/// contractless for user types), read with <see cref="MessagePackSecurity.UntrustedData"/> because
/// every byte a manager or proxy reads came over a socket.
/// </summary>
internal static class ManagerSerialization
{
    public static readonly MessagePackSerializerOptions UntrustedOptions =
        MessagePackObjectSerializer.Options.WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>An <see cref="ISerializer"/> over <see cref="UntrustedOptions"/>, for rebuilding shipped functions.</summary>
    public static readonly ISerializer Untrusted = new UntrustedSerializer();

    public static byte[] ToBytes<T>(T value)
    {
        try { return MessagePackSerializer.Serialize(value, UntrustedOptions); }
        catch (Exception e)
        {
            throw TravelErrors.CannotSend("The value for the manager", value?.GetType() ?? typeof(T), e);
        }
    }

    public static T FromBytes<T>(ReadOnlyMemory<byte> bytes)
    {
        try { return MessagePackSerializer.Deserialize<T>(bytes, UntrustedOptions); }
        catch (MessagePackSerializationException e) when (TravelErrors.Innermost(e) is SerializationException refused)
        {
            // The library's own refusal (a type not allowed, a type that cannot load) already says what to do.
            throw new SerializationException(refused.Message, e);
        }
        catch (MessagePackSerializationException e)
        {
            throw new SerializationException($"A value from the manager could not be read as {typeof(T).Name}: {TravelErrors.Innermost(e).Message} " +
                "Read it with the type it was stored as.", e);
        }
    }

    public static byte[] ToBytes(object? value, Type type, string what)
    {
        try { return MessagePackSerializer.Serialize(type, value, UntrustedOptions); }
        catch (Exception e)
        {
            throw TravelErrors.CannotSend($"The {what}", value?.GetType() ?? type, e);
        }
    }

    public static object? FromBytes(ReadOnlySequence<byte> bytes, Type type)
    {
        try { return MessagePackSerializer.Deserialize(type, bytes.IsSingleSegment ? bytes.First : bytes.ToArray(), UntrustedOptions); }
        catch (MessagePackSerializationException e) when (TravelErrors.Innermost(e) is SerializationException refused)
        {
            throw new SerializationException(refused.Message, e);
        }
        catch (MessagePackSerializationException e)
        {
            throw new SerializationException($"A result from the manager could not be read as {type.Name}: {TravelErrors.Innermost(e).Message}", e);
        }
    }

    public static T FromBytes<T>(ReadOnlySequence<byte> bytes) =>
        FromBytes<T>(bytes.IsSingleSegment ? bytes.First : bytes.ToArray());

    /// <summary>A function as bytes for the manager to run (see <see cref="DelegateShipper"/>); refuses what cannot travel.</summary>
    public static byte[] ShipFunction(Delegate function)
    {
        // A function without captured state ships as the same bytes every time: keep them.
        if (!DelegateShipper.IsStateless(function)) return Ship(function);
        return StatelessFunctions.GetOrAdd((function.GetType(), function.Method), static (_, f) => Ship(f), function);
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(Type, System.Reflection.MethodInfo), byte[]> StatelessFunctions = new();

    private static byte[] Ship(Delegate function)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        DelegateShipper.Write(ref writer, function, Library);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static readonly MessagePackObjectSerializer Library = new();

    private sealed class UntrustedSerializer : ISerializer
    {
        public void Serialize<T>(IBufferWriter<byte> writer, T value) => MessagePackSerializer.Serialize(writer, value, UntrustedOptions);
        public T Deserialize<T>(ReadOnlyMemory<byte> data) => MessagePackSerializer.Deserialize<T>(data, UntrustedOptions);
        public void Serialize(IBufferWriter<byte> writer, object? value, Type type) => MessagePackSerializer.Serialize(type, writer, value, UntrustedOptions);
        public object? Deserialize(ReadOnlyMemory<byte> data, Type type) => MessagePackSerializer.Deserialize(type, data, UntrustedOptions);
    }
}
