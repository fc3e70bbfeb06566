using System.Buffers;

namespace Multiprocessing;

// RingWriter: serializes an item straight into free ring bytes.
internal sealed unsafe partial class SharedRing
{
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
}
