using System.Buffers;

namespace Multiprocessing;

/// <summary>
/// Turns arguments, results and captured values into bytes and back. The default is
/// <see cref="MessagePackObjectSerializer"/>. A replacement must have a public parameterless
/// constructor: each worker process builds its own instance from the type's name.
/// </summary>
public interface ISerializer
{
    /// <summary>Writes <paramref name="value"/> as a <typeparamref name="T"/>.</summary>
    void Serialize<T>(IBufferWriter<byte> writer, T value);

    /// <summary>Reads a <typeparamref name="T"/>.</summary>
    T Deserialize<T>(ReadOnlyMemory<byte> data);

    /// <summary>Writes <paramref name="value"/> as an instance of <paramref name="type"/>.</summary>
    void Serialize(IBufferWriter<byte> writer, object? value, Type type);

    /// <summary>Reads an instance of <paramref name="type"/>.</summary>
    object? Deserialize(ReadOnlyMemory<byte> data, Type type);
}
