using System.Buffers;

namespace Multiprocessing;

/// <summary>A slice of a job's items, serialized once, sent to one worker as one call.</summary>
internal sealed class Chunk(PoolJob job, int index, int offset, int count, ReadOnlyMemory<byte> payload)
{
    public PoolJob Job { get; } = job;
    public int Index { get; } = index;
    public int Offset { get; } = offset;
    public int Count { get; } = count;
    public ReadOnlyMemory<byte> Payload { get; } = payload;
    public long CallId { get; set; }

    /// <summary>How many workers died after taking this chunk and before its code began (guarded by the pool's lock).</summary>
    public int DiedBeforeStart { get; set; }

    public static ReadOnlyMemory<byte> Serialize<TItem>(ISerializer serializer, TItem[] items)
    {
        var buffer = new ArrayBufferWriter<byte>(64 + items.Length * 4);
        try
        {
            serializer.Serialize(buffer, items);
        }
        catch (Exception e) when (e is not SerializationException)
        {
            throw new SerializationException(
                $"An argument of type {typeof(TItem).FullName} cannot be serialized to travel to a worker process: {e.Message} " +
                "Pass plain data (numbers, strings, records, arrays, lists) or the library's shared objects.", e);
        }
        return buffer.WrittenMemory;
    }
}
