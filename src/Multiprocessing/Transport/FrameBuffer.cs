using System.Buffers;
using System.Buffers.Binary;
using MessagePack;

namespace Multiprocessing;

/// <summary>A growable buffer of frames; <see cref="BeginFrame"/> and <see cref="EndFrame"/> bracket each one.</summary>
internal sealed class FrameBuffer : IBufferWriter<byte>
{
    private byte[] _buffer;
    private int _written;
    private int _frameStart = -1;

    public FrameBuffer(int capacity = 4096) => _buffer = new byte[capacity];

    public int Length => _written;
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    /// <summary>The bytes written, as memory (for an asynchronous send); valid until the next write or <see cref="Clear"/>.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    /// <summary>A writable view of bytes already written, for patching a fixed-size field.</summary>
    public Span<byte> Written(int start, int length) => _buffer.AsSpan(start, length);

    /// <summary>Appends one whole frame: its kind, then what <paramref name="fields"/> writes.</summary>
    public void Write(MessageKind kind, FrameFields fields)
    {
        BeginFrame();
        var w = new MessagePackWriter(this);
        w.Write((byte)kind);
        fields(ref w);
        w.Flush();
        EndFrame();
    }

    public void BeginFrame()
    {
        if (_frameStart >= 0) throw new InvalidOperationException("Frame already open.");
        _frameStart = _written;
        GetSpan(4);
        _written += 4;
    }

    public void EndFrame()
    {
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_frameStart), _written - _frameStart - 4);
        _frameStart = -1;
    }

    /// <summary>Drops a frame begun but not ended (its content failed to serialize).</summary>
    public void AbandonFrame()
    {
        if (_frameStart < 0) return;
        _written = _frameStart;
        _frameStart = -1;
    }

    public void Clear()
    {
        _written = 0;
        _frameStart = -1;
        if (_buffer.Length > 1 << 20) _buffer = new byte[4096];
    }

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Grow(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Grow(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Grow(int sizeHint)
    {
        var need = Math.Max(sizeHint, 256);
        if (_buffer.Length - _written >= need) return;
        Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _written + need));
    }
}

/// <summary>Writes a frame's fields after its kind (see <see cref="FrameBuffer.Write"/>).</summary>
internal delegate void FrameFields(ref MessagePackWriter writer);
