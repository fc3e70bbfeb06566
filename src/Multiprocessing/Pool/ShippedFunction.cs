using System.Buffers;
using MessagePack;

namespace Multiprocessing;

/// <summary>A function shipped once per job: its encoded definition and the id workers cache it under (0: not cached).</summary>
internal sealed class ShippedFunction(int id, byte[] definition, bool shared = false)
{
    /// <summary>How long this function's chunks take, for the forwarded jobs that share it (see <see cref="ForwardedJob"/>).</summary>
    public ChunkTiming Timing { get; } = new();

    public int Id { get; } = id;

    /// <summary>A stateless function cached for the pool's life, as opposed to one shipped for a single job.</summary>
    public bool Shared { get; } = shared;
    public byte[] Definition { get; } = definition;

    public static byte[] Encode(Delegate function, ISerializer serializer)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        DelegateShipper.Write(ref w, function, serializer);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}
