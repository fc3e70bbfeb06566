using System.Buffers;
using System.Runtime.CompilerServices;
using MessagePack;
using Multiprocessing.Interop;

namespace Multiprocessing;

/// <summary>
/// The shared-memory core of <see cref="ProcessQueue{T}"/> and <see cref="Connection{T}"/>: a byte ring of
/// length-prefixed records with a producer lock (guards the tail) and a consumer lock (guards the head), both
/// lock words with dead-holder recovery. A record becomes visible only when the tail moves past it, after it
/// was written whole, so a producer killed mid-write leaves nothing behind; the next producer takes the
/// abandoned lock and writes over the unpublished bytes. Records that do not fit the ring go to a chain of
/// spill segments (further shared-memory blocks named <c>RING_N</c>); while the spill holds anything, every new
/// record goes there too, so order is kept. Waiters spin briefly, then sleep on the low half of the put
/// (or get) counter; wakers make the wake syscall only when the matching waiters counter is non-zero.
/// </summary>
internal sealed unsafe class SharedRing : IDisposable
{
    // Header layout (bytes). The producer's and consumer's fields sit on separate cache lines.
    private const int Magic = 0x3151504D; // "MPQ1"
    private const int OffMagic = 0, OffCapacity = 8, OffMaxItems = 16, OffClosed = 20, OffReaderClosed = 24, OffUntracked = 28;
    private const int OffProducerLock = 64, OffTail = 72, OffPutCount = 80, OffConsumerWaiters = 88;
    private const int OffConsumerLock = 128, OffHead = 136, OffGetCount = 144, OffProducerWaiters = 152;
    private const int OffSpillActive = 192, OffSpillReadSeq = 200, OffSpillReadOffset = 208, OffSpillWriteSeq = 216, OffSpillNextSeq = 224, OffSpillSweepFrom = 232;
    private const int OffUnfinished = 256, OffJoinWaiters = 260;
    private const int OffProducers = 320, ProducerSlots = 32;
    private const int HeaderBytes = 512;

    // Spill segment layout: a header line, then records appended one after another.
    private const int SegOffWriteEnd = 0, SegOffNext = 8, SegHeaderBytes = 64;
    private const long SpillSegmentBytes = 1 << 20;
    private const int WrapMarker = -1;

    public const int DefaultRingBytes = 4 << 20;
    public const int MinRingBytes = 4096;

    private readonly SharedMemory _memory;
    private readonly byte* _base;
    private readonly byte* _data;
    private readonly long _capacity;
    private readonly long _mask;
    private readonly RingWriter _writer;
    private readonly NativeMemory _reader = new();
    private readonly Dictionary<long, SharedMemory> _segments = [];
    private readonly Lock _segmentsGate = new();
    private ArrayBufferWriter<byte>? _scratch;
    private long _knownHead;
    private int _registered;
    private int _disposed;

    private SharedRing(SharedMemory memory)
    {
        _memory = memory;
        _base = (byte*)memory.Address;
        _data = _base + HeaderBytes;
        _capacity = *(long*)(_base + OffCapacity);
        _mask = _capacity - 1;
        _writer = new RingWriter(this);
    }

    /// <summary>Creates a ring with <paramref name="ringBytes"/> of data (rounded up to a power of two), owned by this process.</summary>
    public static SharedRing Create(int ringBytes, int maxItems, string kind)
    {
        if (ringBytes < MinRingBytes)
            throw new ArgumentOutOfRangeException(nameof(ringBytes), ringBytes, $"The ring needs at least {MinRingBytes} bytes; the default is {DefaultRingBytes}.");
        if (maxItems < 0)
            throw new ArgumentOutOfRangeException("maxSize", maxItems, "maxSize must be 0 (unbounded) or a positive number of items.");
        var capacity = (long)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)ringBytes);
        var memory = SharedMemory.Wrap(SharedMemory.CreateOwned(HeaderBytes + capacity, null, "mp_" + kind + "_", withSpill: true), isOwner: true);
        var b = (byte*)memory.Address;
        *(long*)(b + OffCapacity) = capacity;
        *(int*)(b + OffMaxItems) = maxItems;
        *(long*)(b + OffSpillNextSeq) = 1;
        *(long*)(b + OffSpillSweepFrom) = 1;
        Volatile.Write(ref *(int*)(b + OffMagic), Magic);
        return new SharedRing(memory);
    }

    /// <summary>Attaches to a ring made by another process (a handle that travelled).</summary>
    public static SharedRing Attach(string name)
    {
        var memory = SharedMemory.Attach(name);
        if (memory.Size < HeaderBytes + MinRingBytes || Volatile.Read(ref *(int*)memory.Address) != Magic)
        {
            memory.Dispose();
            throw new SerializationException($"'{name}' is not the shared-memory block of a queue or pipe.");
        }
        return new SharedRing(memory);
    }

    public string Name => _memory.Name;
    public bool IsOwner => _memory.IsOwner;
    public long Capacity => _capacity;
    public int MaxItems => *(int*)(_base + OffMaxItems);

    /// <summary>When set, a producer that exits normally is forgotten (a queue); else its exit reads as end of stream (a pipe).</summary>
    public bool ForgetProducersOnExit { get; set; } = true;

    private ref int I32(int offset) => ref *(int*)(_base + offset);
    private ref long I64(int offset) => ref *(long*)(_base + offset);
    private int* PutWord => (int*)(_base + OffPutCount); // low half of the put counter (little-endian)
    private int* GetWord => (int*)(_base + OffGetCount);
    private int* UnfinishedWord => (int*)(_base + OffUnfinished);

    public int Count => (int)Math.Clamp(Volatile.Read(ref I64(OffPutCount)) - Volatile.Read(ref I64(OffGetCount)), 0, int.MaxValue);
    public bool IsClosed => Volatile.Read(ref I32(OffClosed)) != 0;
    public bool IsReaderClosed => Volatile.Read(ref I32(OffReaderClosed)) != 0;
    public int Unfinished => Volatile.Read(ref *UnfinishedWord);

    public bool HasData => Volatile.Read(ref I64(OffTail)) != Volatile.Read(ref I64(OffHead)) || Volatile.Read(ref I32(OffSpillActive)) != 0;

    // ------------------------------------------------------------------ producing

    /// <summary>Writes one item; false when the deadline passed first (a bounded queue stayed full).</summary>
    public bool Put<T>(T item, bool countUnfinished, Deadline deadline, CancellationToken token)
    {
        ThrowIfDisposed();
        if (Volatile.Read(ref _registered) == 0) RegisterProducer();
        var maxItems = MaxItems;
        while (true)
        {
            if (IsClosed) throw new InvalidOperationException("The queue is closed: nothing more can be put into it.");
            if (IsReaderClosed) throw new IOException("The receiving end of the pipe is closed: nothing more can be sent.");
            if (maxItems > 0 && Count >= maxItems && !WaitForRoom(maxItems, deadline, token)) return false;
            if (!AcquireLock(OffProducerLock, deadline, token, producer: true)) return false;
            try
            {
                if (maxItems > 0 && Count >= maxItems) continue; // another producer took the room; wait again
                if (countUnfinished) Interlocked.Increment(ref *UnfinishedWord);
                var written = false;
                try
                {
                    WriteRecord(item);
                    written = true;
                }
                finally
                {
                    if (!written && countUnfinished) Interlocked.Decrement(ref *UnfinishedWord);
                }
                Interlocked.Increment(ref I64(OffPutCount)); // full fence: publication before the waiters check
            }
            finally
            {
                ReleaseLock(OffProducerLock);
            }
            if (Volatile.Read(ref I32(OffConsumerWaiters)) > 0) Futex.Wake(PutWord, 1);
            return true;
        }
    }

    private void WriteRecord<T>(T item)
    {
        if (Volatile.Read(ref I32(OffSpillActive)) != 0)
        {
            WriteToSpill(SerializeToScratch(item));
            return;
        }
        var tail = I64(OffTail);
        // A stale head is a safe lower bound (heads only grow): re-read it, touching the consumers' line, only when short of room.
        var free = _capacity - (tail - _knownHead);
        if (free < 4096 || free < _capacity / 4)
        {
            _knownHead = Volatile.Read(ref I64(OffHead));
            free = _capacity - (tail - _knownHead);
        }
        var pos = tail & _mask;
        var toEnd = _capacity - pos;
        var contiguous = Math.Min(toEnd, free);
        ReadOnlySpan<byte> payload;
        if (contiguous >= 16)
        {
            // The fast path: serialize straight into the ring, after the length prefix.
            _writer.Begin(_data + pos + 4, (int)Math.Min(contiguous - 4, int.MaxValue));
            try
            {
                Formatter<T>.Serialize(_writer, item);
            }
            catch
            {
                _writer.End();
                throw;
            }
            if (!_writer.Overflowed)
            {
                var length = _writer.End();
                *(int*)(_data + pos) = length;
                Volatile.Write(ref I64(OffTail), tail + Align(4 + length));
                return;
            }
            payload = _writer.EndInScratch();
        }
        else payload = SerializeToScratch(item);

        var need = Align(4 + payload.Length);
        if (need <= contiguous)
        {
            *(int*)(_data + pos) = payload.Length;
            payload.CopyTo(new Span<byte>(_data + pos + 4, payload.Length));
            Volatile.Write(ref I64(OffTail), tail + need);
        }
        else if (toEnd < free && need <= free - toEnd)
        {
            // Skip the end of the ring with a marker and write at the start.
            *(int*)(_data + pos) = WrapMarker;
            *(int*)_data = payload.Length;
            payload.CopyTo(new Span<byte>(_data + 4, payload.Length));
            Volatile.Write(ref I64(OffTail), tail + toEnd + need);
        }
        else WriteToSpill(payload);
    }

    private ReadOnlySpan<byte> SerializeToScratch<T>(T item)
    {
        var scratch = _scratch ??= new ArrayBufferWriter<byte>(4096);
        scratch.ResetWrittenCount();
        Formatter<T>.Serialize(scratch, item);
        return scratch.WrittenSpan;
    }

    internal ArrayBufferWriter<byte> Scratch => _scratch ??= new ArrayBufferWriter<byte>(4096);

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

    private bool WaitForRoom(int maxItems, Deadline deadline, CancellationToken token)
    {
        var spinner = new SpinWait();
        while (spinner.Count < Futex.SpinIterations)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            if (Count < maxItems) return true;
        }
        using var hold = Keep();
        using var cancel = Futex.WakeOnCancel(GetWord, token);
        Interlocked.Increment(ref I32(OffProducerWaiters));
        try
        {
            while (true)
            {
                token.ThrowIfCancellationRequested();
                var seen = Volatile.Read(ref *GetWord);
                if (Count < maxItems || IsClosed) return true;
                if (!Futex.WaitSlice(GetWord, seen, deadline, out _)) return false;
            }
        }
        finally
        {
            Interlocked.Decrement(ref I32(OffProducerWaiters));
        }
    }

    // ------------------------------------------------------------------ consuming

    public enum TakeOutcome { Taken, TimedOut }

    /// <summary>
    /// Takes the oldest item, waiting until <paramref name="deadline"/>. Throws <see cref="InvalidOperationException"/>
    /// (queue) or <see cref="EndOfStreamException"/> (pipe, <paramref name="endOfStream"/>) when closed and drained,
    /// and <see cref="ProducerDiedException"/> / <see cref="EndOfStreamException"/> when empty and every producer is dead.
    /// </summary>
    public bool Take<T>(out T item, Deadline deadline, CancellationToken token, bool endOfStream)
    {
        ThrowIfDisposed();
        if (TryTakeOnce(out item, deadline, token, out var locked)) return true;
        if (!locked) return false;
        var spinner = new SpinWait();
        while (spinner.Count < Futex.SpinIterations)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            if (HasData && TryTakeOnce(out item, deadline, token, out locked)) return true;
            if (!locked) return false;
        }
        using var hold = Keep();
        using var cancel = Futex.WakeOnCancel(PutWord, token);
        Interlocked.Increment(ref I32(OffConsumerWaiters));
        try
        {
            var first = true;
            while (true)
            {
                token.ThrowIfCancellationRequested();
                var seen = Volatile.Read(ref *PutWord);
                if (TryTakeOnce(out item, deadline, token, out locked)) return true;
                if (!locked) return false;
                if (first && endOfStream) ThrowIfProducersDead(endOfStream); // a pipe's writer that exited: say so now
                first = false;
                if (IsClosed)
                {
                    throw endOfStream
                        ? new EndOfStreamException("The other end of the pipe was closed and everything it sent has been received.")
                        : new InvalidOperationException("The queue is closed and empty: nothing more will come.");
                }
                if (!Futex.WaitSlice(PutWord, seen, deadline, out var sliceTimedOut))
                {
                    ThrowIfProducersDead(endOfStream);
                    return false;
                }
                if (sliceTimedOut) ThrowIfProducersDead(endOfStream);
            }
        }
        finally
        {
            Interlocked.Decrement(ref I32(OffConsumerWaiters));
        }
    }

    /// <summary>Waits until an item is waiting or the stream ended; false when the deadline passed.</summary>
    public bool WaitForData(Deadline deadline, CancellationToken token, bool endOfStream)
    {
        ThrowIfDisposed();
        if (HasData || IsClosed) return true;
        var spinner = new SpinWait();
        while (spinner.Count < Futex.SpinIterations)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            if (HasData) return true;
        }
        using var hold = Keep();
        using var cancel = Futex.WakeOnCancel(PutWord, token);
        Interlocked.Increment(ref I32(OffConsumerWaiters));
        try
        {
            while (true)
            {
                token.ThrowIfCancellationRequested();
                var seen = Volatile.Read(ref *PutWord);
                if (HasData || IsClosed) return true;
                if (!Futex.WaitSlice(PutWord, seen, deadline, out var sliceTimedOut)) return ProducersDead(clear: false) != 0;
                if (sliceTimedOut && endOfStream && ProducersDead(clear: false) != 0) return true;
            }
        }
        finally
        {
            Interlocked.Decrement(ref I32(OffConsumerWaiters));
        }
    }

    private bool TryTakeOnce<T>(out T item, Deadline deadline, CancellationToken token, out bool locked)
    {
        item = default!;
        locked = true;
        if (!HasData) return false;
        if (!AcquireLock(OffConsumerLock, deadline, token, producer: false))
        {
            locked = false;
            return false;
        }
        bool taken;
        try
        {
            taken = TakeLocked(out item);
            if (taken) Interlocked.Increment(ref I64(OffGetCount));
        }
        finally
        {
            ReleaseLock(OffConsumerLock);
        }
        if (taken && Volatile.Read(ref I32(OffProducerWaiters)) > 0) Futex.Wake(GetWord, 1);
        return taken;
    }

    private bool TakeLocked<T>(out T item)
    {
        while (true)
        {
            var spillActive = Volatile.Read(ref I32(OffSpillActive)) != 0; // read before the tail: see the order notes in docs/queues.md
            var head = I64(OffHead);
            if (head != Volatile.Read(ref I64(OffTail)))
            {
                var pos = head & _mask;
                var length = *(int*)(_data + pos);
                if (length == WrapMarker)
                {
                    Volatile.Write(ref I64(OffHead), head + (_capacity - pos));
                    continue;
                }
                try
                {
                    item = Deserialize<T>(_data + pos + 4, length);
                }
                finally
                {
                    Volatile.Write(ref I64(OffHead), head + Align(4 + length)); // a record that cannot be read is dropped, not retried forever
                }
                return true;
            }
            if (!spillActive)
            {
                item = default!;
                return false;
            }
            if (TakeFromSpill(out item, out var drained)) return true;
            if (drained) continue; // the spill was emptied and retired: look at the ring again
            item = default!;
            return false;
        }
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

    private T Deserialize<T>(byte* payload, int length)
    {
        _reader.Reset(payload, length);
        try
        {
            return Formatter<T>.Deserialize(_reader.Memory);
        }
        catch (MessagePackSerializationException e)
        {
            throw new SerializationException($"An item in the queue could not be read as {typeof(T).Name}: {e.Message}. Do the producer and the consumer use the same item type?", e);
        }
    }

    // ------------------------------------------------------------------ closing, joining

    public void Close()
    {
        if (_disposed != 0) return;
        Volatile.Write(ref I32(OffClosed), 1);
        if (Volatile.Read(ref I32(OffConsumerWaiters)) > 0) Futex.WakeAll(PutWord);
        if (Volatile.Read(ref I32(OffProducerWaiters)) > 0) Futex.WakeAll(GetWord);
    }

    public void CloseReader()
    {
        if (_disposed != 0) return;
        Volatile.Write(ref I32(OffReaderClosed), 1);
        if (Volatile.Read(ref I32(OffProducerWaiters)) > 0) Futex.WakeAll(GetWord);
    }

    public void TaskDone()
    {
        ThrowIfDisposed();
        var current = Volatile.Read(ref *UnfinishedWord);
        while (true)
        {
            if (current <= 0)
                throw new InvalidOperationException("TaskDone() was called more times than there were items put into the queue (Python raises ValueError here).");
            var seen = Interlocked.CompareExchange(ref *UnfinishedWord, current - 1, current);
            if (seen == current) break;
            current = seen;
        }
        if (current == 1 && Volatile.Read(ref I32(OffJoinWaiters)) > 0) Futex.WakeAll(UnfinishedWord);
    }

    public bool Join(Deadline deadline, CancellationToken token)
    {
        ThrowIfDisposed();
        if (Unfinished == 0) return true;
        using var hold = Keep();
        using var cancel = Futex.WakeOnCancel(UnfinishedWord, token);
        Interlocked.Increment(ref I32(OffJoinWaiters));
        try
        {
            while (true)
            {
                token.ThrowIfCancellationRequested();
                var seen = Volatile.Read(ref *UnfinishedWord);
                if (seen == 0) return true;
                if (!Futex.WaitSlice(UnfinishedWord, seen, deadline, out _)) return false;
            }
        }
        finally
        {
            Interlocked.Decrement(ref I32(OffJoinWaiters));
        }
    }

    // ------------------------------------------------------------------ producers' liveness

    private void RegisterProducer()
    {
        if (Interlocked.Exchange(ref _registered, 1) != 0) return;
        var me = LockWord.Me;
        var slots = (int*)(_base + OffProducers);
        var free = -1;
        for (var i = 0; i < ProducerSlots; i++)
        {
            var pid = Volatile.Read(ref slots[i]);
            if (pid == me) { free = -2; break; }
            if (pid == 0 && free == -1 && Interlocked.CompareExchange(ref slots[i], me, 0) == 0) { free = i; break; }
        }
        if (free == -1) Volatile.Write(ref I32(OffUntracked), 1); // table full: never declare the producers dead
        if (ForgetProducersOnExit && free >= 0) ProducerExit.Track(this);
    }

    /// <summary>Removes this process from the producer table (it exits normally: it did not die).</summary>
    internal void ForgetThisProducer()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        var slots = (int*)(_base + OffProducers);
        for (var i = 0; i < ProducerSlots; i++)
            Interlocked.CompareExchange(ref slots[i], 0, LockWord.Me);
    }

    /// <summary>When every producer on record is dead (none alive, none untracked), a dead pid; else 0.</summary>
    private int ProducersDead(bool clear)
    {
        if (Volatile.Read(ref I32(OffUntracked)) != 0) return 0;
        var slots = (int*)(_base + OffProducers);
        var dead = 0;
        for (var i = 0; i < ProducerSlots; i++)
        {
            var pid = Volatile.Read(ref slots[i]);
            if (pid == 0) continue;
            if (pid == LockWord.Me || Platform.Current.ProcessExists(pid)) return 0;
            dead = pid;
        }
        if (dead != 0 && clear)
        {
            for (var i = 0; i < ProducerSlots; i++)
            {
                var pid = Volatile.Read(ref slots[i]);
                if (pid != 0 && !Platform.Current.ProcessExists(pid)) Interlocked.CompareExchange(ref slots[i], 0, pid);
            }
        }
        return dead;
    }

    private void ThrowIfProducersDead(bool endOfStream)
    {
        if (HasData) return;
        // A pipe's writer that exited is the end of the stream for good; a queue reports each dead producer once.
        var pid = ProducersDead(clear: !endOfStream);
        if (pid == 0) return;
        if (endOfStream) throw new EndOfStreamException($"The process that was sending on this pipe (pid {pid}) has exited, and everything it sent has been received.");
        throw new ProducerDiedException(
            $"The queue is empty and every process that put into it has died (last seen: pid {pid}) without closing it; nothing more can come unless another process starts putting.", pid);
    }

    // ------------------------------------------------------------------ locks, lifetime

    private bool AcquireLock(int offset, Deadline deadline, CancellationToken token, bool producer)
    {
        var word = (int*)(_base + offset);
        if (LockWord.TryAcquire(word)) return true;
        token.ThrowIfCancellationRequested();
        switch (LockWord.Acquire(word, deadline, token, out _))
        {
            case LockWord.Outcome.Acquired:
                return true;
            case LockWord.Outcome.Abandoned:
                // The dead holder published nothing it had not finished; only a half-made spill link needs repair.
                if (producer) RepairSpill();
                return true;
            default:
                return false;
        }
    }

    private void ReleaseLock(int offset) => LockWord.Release((int*)(_base + offset));

    private SyncBlock.Hold Keep()
    {
        ThrowIfDisposed();
        if (!_memory.Mapping.TryAddReference()) throw new ObjectDisposedException(Name);
        return new SyncBlock.Hold(_memory.Mapping);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    public void Dispose()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        if (Volatile.Read(ref _registered) != 0)
        {
            // Disposing a handle is a normal end for a queue's producer, not a death.
            if (ForgetProducersOnExit) ForgetThisProducer();
            ProducerExit.Untrack(this);
        }
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        long sweepFrom = 0, sweepTo = -1;
        if (IsOwner)
        {
            sweepFrom = Volatile.Read(ref I64(OffSpillSweepFrom));
            sweepTo = Volatile.Read(ref I64(OffSpillNextSeq));
        }
        List<SharedMemory> segments;
        lock (_segmentsGate)
        {
            segments = [.. _segments.Values];
            _segments.Clear();
        }
        foreach (var s in segments) s.Dispose();
        // The owner removes every spill segment that may still exist (a consumer normally unlinks what it drains).
        for (var seq = Math.Max(1, sweepFrom); seq <= sweepTo; seq++) Platform.Current.UnlinkSharedMemory(SegmentName(seq));
        _memory.Dispose();
    }

    private static long Align(long n) => (n + 7) & ~7L;

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

        public static void Serialize(IBufferWriter<byte> output, T value)
        {
            var writer = new MessagePackWriter(output);
            Instance.Serialize(ref writer, value, MessagePackObjectSerializer.Options);
            writer.Flush();
        }

        public static T Deserialize(ReadOnlyMemory<byte> input)
        {
            var reader = new MessagePackReader(input);
            return Instance.Deserialize(ref reader, MessagePackObjectSerializer.Options);
        }
    }

    /// <summary>An <see cref="IBufferWriter{T}"/> over free ring bytes that moves to the scratch buffer if the item outgrows them.</summary>
    private sealed class RingWriter(SharedRing ring) : IBufferWriter<byte>
    {
        private byte* _start;
        private int _limit;
        private int _written;
        private ArrayBufferWriter<byte>? _overflow;

        public bool Overflowed => _overflow is not null;

        public void Begin(byte* start, int limit)
        {
            _start = start;
            _limit = limit;
            _written = 0;
            _overflow = null;
        }

        public int End()
        {
            _overflow = null;
            return _written;
        }

        public ReadOnlySpan<byte> EndInScratch()
        {
            var span = _overflow!.WrittenSpan;
            _overflow = null;
            return span;
        }

        public void Advance(int count)
        {
            if (_overflow is not null) _overflow.Advance(count);
            else _written += count;
        }

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            MoveToScratch(); // native ring bytes have no Memory<byte>; MessagePack asks for spans
            return _overflow!.GetMemory(sizeHint);
        }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            if (_overflow is null)
            {
                var left = _limit - _written;
                if (left >= Math.Max(sizeHint, 1)) return new Span<byte>(_start + _written, left);
                MoveToScratch();
            }
            return _overflow!.GetSpan(sizeHint);
        }

        private void MoveToScratch()
        {
            if (_overflow is not null) return;
            var scratch = ring.Scratch;
            scratch.ResetWrittenCount();
            new ReadOnlySpan<byte>(_start, _written).CopyTo(scratch.GetSpan(_written));
            scratch.Advance(_written);
            _overflow = scratch;
        }
    }

    /// <summary>A <see cref="Memory{T}"/> over ring bytes, reset for each item (no allocation per item).</summary>
    private sealed class NativeMemory : MemoryManager<byte>
    {
        private byte* _pointer;
        private int _length;

        public void Reset(byte* pointer, int length)
        {
            _pointer = pointer;
            _length = length;
        }

        public override Span<byte> GetSpan() => new(_pointer, _length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}

/// <summary>Forgets this process as a producer of every queue it put into when it exits normally (only a crash reads as death).</summary>
internal static class ProducerExit
{
    private static readonly HashSet<SharedRing> Rings = [];
    private static readonly Lock Gate = new();
    private static bool _hooked;

    public static void Track(SharedRing ring)
    {
        lock (Gate)
        {
            Rings.Add(ring);
            if (_hooked) return;
            _hooked = true;
            AppDomain.CurrentDomain.ProcessExit += static (_, _) =>
            {
                SharedRing[] rings;
                lock (Gate) rings = [.. Rings];
                foreach (var r in rings) r.ForgetThisProducer();
            };
        }
    }

    public static void Untrack(SharedRing ring)
    {
        lock (Gate) Rings.Remove(ring);
    }
}
