namespace Multiprocessing;

/// <summary>
/// The 64-byte shared-memory block behind a primitive: a few 32-bit futex words. The creator owns it
/// (unlinks on dispose, tracked if it dies); handles travel by its name.
/// </summary>
internal sealed unsafe class SyncBlock : IDisposable
{
    private const int Size = 64;
    private readonly SharedMemory _memory;

    private SyncBlock(SharedMemory memory) => _memory = memory;

    public static SyncBlock Create(string kind) => new(SharedMemory.Wrap(SharedMemory.CreateOwned(Size, null, "mp_" + kind + "_"), isOwner: true));

    public static SyncBlock Attach(string name)
    {
        var memory = SharedMemory.Attach(name);
        if (memory.Size < Size)
        {
            memory.Dispose();
            throw new SerializationException($"'{name}' is not the block of a synchronization primitive (it has {memory.Size} bytes).");
        }
        return new SyncBlock(memory);
    }

    public string Name => _memory.Name;

    public int* Word(int index) => (int*)_memory.Address + index;

    /// <summary>Keeps the mapping while a thread sleeps on it, so a concurrent Dispose cannot unmap it under the sleeper.</summary>
    public Hold Keep()
    {
        _ = _memory.Address; // throws once disposed
        if (!_memory.Mapping.TryAddReference()) throw new ObjectDisposedException(_memory.Name);
        return new Hold(_memory.Mapping);
    }

    public void Dispose() => _memory.Dispose();

    public readonly struct Hold(Mapping mapping) : IDisposable
    {
        public void Dispose() => Mappings.Release(mapping);
    }
}
