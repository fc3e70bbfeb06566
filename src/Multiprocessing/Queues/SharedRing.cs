using System.Buffers;
using MessagePack;

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
internal sealed unsafe partial class SharedRing : IDisposable
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

    /// <summary>Writes one item; false when the deadline passed first (a bounded queue stayed full). <paramref name="role"/> names the item in errors.</summary>
    public bool Put<T>(T item, bool countUnfinished, Deadline deadline, CancellationToken token, string role = "The item")
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
                    WriteRecord(item, role);
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

    private void WriteRecord<T>(T item, string role)
    {
        if (Volatile.Read(ref I32(OffSpillActive)) != 0)
        {
            WriteToSpill(SerializeToScratch(item, role));
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
                Formatter<T>.Serialize(_writer, item, role);
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
        else payload = SerializeToScratch(item, role);

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

    private ReadOnlySpan<byte> SerializeToScratch<T>(T item, string role)
    {
        var scratch = _scratch ??= new ArrayBufferWriter<byte>(4096);
        scratch.ResetWrittenCount();
        Formatter<T>.Serialize(scratch, item, role);
        return scratch.WrittenSpan;
    }

    internal ArrayBufferWriter<byte> Scratch => _scratch ??= new ArrayBufferWriter<byte>(4096);

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
}
