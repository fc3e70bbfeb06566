
namespace Multiprocessing;

// The spill chain: records that do not fit the ring go, in order, to further shared-memory segments (RING_N).
internal sealed unsafe partial class SharedRing
{
    private void WriteToSpill(ReadOnlySpan<byte> payload)
    {
        var need = Align(4 + payload.Length);
        if (Volatile.Read(ref I32(OffSpillActive)) != 0)
        {
            var writeSeq = I64(OffSpillWriteSeq);
            var segment = Segment(writeSeq);
            var b = (byte*)segment.Address;
            var end = Volatile.Read(ref *(long*)(b + SegOffWriteEnd));
            if (end + need <= segment.Size)
            {
                *(int*)(b + end) = payload.Length;
                payload.CopyTo(new Span<byte>(b + end + 4, payload.Length));
                Volatile.Write(ref *(long*)(b + SegOffWriteEnd), end + need);
                return;
            }
            var next = I64(OffSpillNextSeq);
            NewSegment(next, payload, need);
            Volatile.Write(ref *(long*)(b + SegOffNext), next); // readers follow the link once this segment is drained
            I64(OffSpillWriteSeq) = next;
            I64(OffSpillNextSeq) = next + 1;
            DropSegment(writeSeq, unlink: false);
            return;
        }
        var first = I64(OffSpillNextSeq);
        NewSegment(first, payload, need);
        I64(OffSpillReadSeq) = first;
        I64(OffSpillReadOffset) = SegHeaderBytes;
        I64(OffSpillWriteSeq) = first;
        I64(OffSpillNextSeq) = first + 1;
        Volatile.Write(ref I32(OffSpillActive), 1);
    }

    private void NewSegment(long seq, ReadOnlySpan<byte> payload, long need)
    {
        var name = SegmentName(seq);
        var size = Math.Max(SpillSegmentBytes, SegHeaderBytes + need);
        Mapping mapping;
        try
        {
            mapping = Mappings.Create(name, size);
        }
        catch (IOException) when (Platform.Current.StatSharedMemory(name) is not null)
        {
            // Left by a producer that died between creating and linking it (we hold the producer lock).
            Platform.Current.UnlinkSharedMemory(name);
            mapping = Mappings.Create(name, size);
        }
        // Not tracked by this process's tracker: the segment outlives its writer (a worker that puts and exits).
        // The queue's owner sweeps what is left when it is disposed, its tracker when it dies or exits without
        // disposing (the ring is registered with its spill); consumers unlink what they drain.
        var segment = SharedMemory.Wrap(mapping, isOwner: false);
        var b = (byte*)segment.Address;
        *(int*)(b + SegHeaderBytes) = payload.Length;
        payload.CopyTo(new Span<byte>(b + SegHeaderBytes + 4, payload.Length));
        Volatile.Write(ref *(long*)(b + SegOffWriteEnd), SegHeaderBytes + need);
        lock (_segmentsGate) _segments[seq] = segment;
    }

    private string SegmentName(long seq) => $"{Name}_{seq}";

    private SharedMemory Segment(long seq)
    {
        lock (_segmentsGate)
        {
            if (_segments.TryGetValue(seq, out var known)) return known;
            // Segments below the read position were drained and unlinked: unmap our views of them.
            var drainedBelow = Volatile.Read(ref I64(OffSpillReadSeq));
            foreach (var old in _segments.Keys.Where(k => k < drainedBelow).ToList())
            {
                _segments.Remove(old, out var stale);
                stale!.Dispose();
            }
            var attached = SharedMemory.Attach(SegmentName(seq));
            _segments[seq] = attached;
            return attached;
        }
    }

    private void DropSegment(long seq, bool unlink)
    {
        SharedMemory? segment;
        lock (_segmentsGate)
        {
            if (!_segments.Remove(seq, out segment)) segment = null;
        }
        if (unlink) Platform.Current.UnlinkSharedMemory(SegmentName(seq));
        segment?.Dispose();
    }

    /// <summary>After a producer died holding the lock: finish the link it may have half made.</summary>
    private void RepairSpill()
    {
        if (Volatile.Read(ref I32(OffSpillActive)) == 0) return;
        var seq = I64(OffSpillWriteSeq);
        while (true)
        {
            long next;
            try
            {
                next = Volatile.Read(ref *(long*)((byte*)Segment(seq).Address + SegOffNext));
            }
            catch (FileNotFoundException)
            {
                return;
            }
            if (next == 0) break;
            seq = next;
        }
        I64(OffSpillWriteSeq) = seq;
        if (I64(OffSpillNextSeq) <= seq) I64(OffSpillNextSeq) = seq + 1;
    }

    private bool TakeFromSpill<T>(out T item, out bool retired)
    {
        retired = false;
        while (true)
        {
            var seq = I64(OffSpillReadSeq);
            var segment = Segment(seq);
            var b = (byte*)segment.Address;
            var offset = I64(OffSpillReadOffset);
            if (offset < Volatile.Read(ref *(long*)(b + SegOffWriteEnd)))
            {
                var length = *(int*)(b + offset);
                try
                {
                    item = Deserialize<T>(b + offset + 4, length);
                }
                finally
                {
                    I64(OffSpillReadOffset) = offset + Align(4 + length);
                }
                return true;
            }
            var next = Volatile.Read(ref *(long*)(b + SegOffNext));
            if (next != 0)
            {
                I64(OffSpillReadSeq) = next;
                I64(OffSpillReadOffset) = SegHeaderBytes;
                DropSegment(seq, unlink: true);
                I64(OffSpillSweepFrom) = next;
                continue;
            }
            // Drained: retire the spill under the producer lock (order: consumer lock, then producer lock).
            AcquireLock(OffProducerLock, Deadline.Infinite, CancellationToken.None, producer: true);
            try
            {
                if (offset < Volatile.Read(ref *(long*)(b + SegOffWriteEnd)) || Volatile.Read(ref *(long*)(b + SegOffNext)) != 0) continue;
                Volatile.Write(ref I32(OffSpillActive), 0);
                DropSegment(seq, unlink: true);
                I64(OffSpillSweepFrom) = I64(OffSpillNextSeq);
            }
            finally
            {
                ReleaseLock(OffProducerLock);
            }
            item = default!;
            retired = true;
            return false;
        }
    }
}
