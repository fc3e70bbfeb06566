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

    /// <summary>How many times this chunk was run again after the lane running it was lost (guarded by the pool's lock).</summary>
    public int Retries { get; set; }

    /// <summary>
    /// Serializes argument tuples. On failure the error names the first item that cannot travel: "Item N of the
    /// <paramref name="call"/>" (N counted from <paramref name="offset"/>), or "The argument(s)" when no call is named.
    /// </summary>
    public static ReadOnlyMemory<byte> Serialize<TItem>(ISerializer serializer, TItem[] items, string? call = null, int offset = 0)
    {
        var buffer = new ArrayBufferWriter<byte>(64 + items.Length * 4);
        try
        {
            serializer.Serialize(buffer, items);
        }
        catch (Exception e)
        {
            var tuple = typeof(TItem).IsGenericType && typeof(TItem).FullName!.StartsWith("System.ValueTuple`", StringComparison.Ordinal);
            throw Failure(serializer, items, e, i => call is null ? (tuple ? "The arguments" : "The argument") : $"Item {offset + i} of the {call}");
        }
        return buffer.WrittenMemory;
    }

    /// <summary>The error for a batch that failed: which item, and why (each is tried alone; this runs only after a failure).</summary>
    public static SerializationException Failure<T>(ISerializer serializer, T[] values, Exception error, Func<int, string> role)
    {
        TravelErrors.Forget(error); // a formatter that failed to build throws the same exception again: start its path afresh
        for (var i = 0; i < values.Length; i++)
        {
            try
            {
                serializer.Serialize(new ArrayBufferWriter<byte>(), values[i]);
            }
            catch (Exception one)
            {
                return TravelErrors.CannotSend(role(i), values[i]?.GetType() ?? typeof(T), one);
            }
        }
        return TravelErrors.CannotSend(role(0), typeof(T), error);
    }
}
