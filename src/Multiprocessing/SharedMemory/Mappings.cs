
namespace Multiprocessing;

/// <summary>
/// One mapping of a shared-memory object in this process, shared by every handle to it here:
/// a block received a thousand times (a lock captured by every task of a pool) is mapped once.
/// It is unmapped when the last handle is disposed; never by a finalizer, because a
/// <see cref="Span{T}"/> over it may outlive every reference to its handle.
/// </summary>
internal sealed class Mapping
{
    private int _references = 1;

    public Mapping(string name, SharedMapping native)
    {
        Name = name;
        Address = native.Address;
        Size = native.Size;
        Inode = native.Inode;
    }

    public string Name { get; }
    public nint Address { get; }
    public long Size { get; }
    public long Inode { get; }

    public bool TryAddReference()
    {
        // Zero means already unmapped: a concurrent release won; the caller maps anew.
        var current = Volatile.Read(ref _references);
        while (current > 0)
        {
            var seen = Interlocked.CompareExchange(ref _references, current + 1, current);
            if (seen == current) return true;
            current = seen;
        }
        return false;
    }

    public bool ReleaseReference() => Interlocked.Decrement(ref _references) == 0;
}

/// <summary>The process-wide table of mappings, by name and file identity.</summary>
internal static class Mappings
{
    private static readonly Dictionary<string, Mapping> ByName = new(StringComparer.Ordinal);
    private static readonly Lock Gate = new();

    /// <summary>Creates, sizes and maps a new block; throws <see cref="IOException"/> when the name is taken.</summary>
    public static Mapping Create(string name, long size)
    {
        var mapping = new Mapping(name, Platform.Current.CreateSharedMemory(name, size));
        lock (Gate) ByName[name] = mapping;
        return mapping;
    }

    /// <summary>Maps an existing block, reusing this process's mapping when it is the same file.</summary>
    public static Mapping Attach(string name)
    {
        var stat = Platform.Current.StatSharedMemory(name);
        lock (Gate)
        {
            // The same name may now denote a new file (the old one unlinked, a new one created): compare identities.
            if (stat is { } s && ByName.TryGetValue(name, out var existing) && existing.Inode == s.Inode && existing.TryAddReference())
                return existing;
        }
        var mapping = new Mapping(name, Platform.Current.OpenSharedMemory(name));
        lock (Gate) ByName[name] = mapping;
        return mapping;
    }

    public static void Release(Mapping mapping)
    {
        if (!mapping.ReleaseReference()) return;
        lock (Gate)
        {
            if (ByName.TryGetValue(mapping.Name, out var current) && ReferenceEquals(current, mapping)) ByName.Remove(mapping.Name);
        }
        Platform.Current.Unmap(mapping.Address, mapping.Size);
    }
}
