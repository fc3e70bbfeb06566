using System.Buffers;

namespace Multiprocessing;

// NativeMemory: a Memory<byte> over ring bytes, for deserializing an item in place.
internal sealed unsafe partial class SharedRing
{
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
