namespace Multiprocessing;

/// <summary>
/// A scope for shared memory, as Python's <c>SharedMemoryManager</c>: every block, array, value and list made through it
/// is released and unlinked when it is disposed, so nothing outlives the <c>using</c> that made it (a process killed
/// before that is covered by the resource tracker, which unlinks its blocks too).
/// <code>
/// using var smm = new SharedMemoryManager();
/// var block = smm.SharedMemory(128);
/// var numbers = smm.Array&lt;double&gt;(1_000);
/// var list = smm.ShareableList([1, 2.5, "text"]);
/// </code>
/// </summary>
public sealed class SharedMemoryManager : IDisposable
{
    private readonly Lock _lock = new();
    private readonly List<IDisposable> _made = [];
    private bool _disposed;

    /// <summary>A new block of <paramref name="size"/> bytes (Python: <c>smm.SharedMemory(size)</c>).</summary>
    /// <exception cref="ObjectDisposedException">The manager was disposed.</exception>
    public SharedMemory SharedMemory(long size) => Keep(Multiprocessing.SharedMemory.Create(size));

    /// <summary>A new zeroed array of <paramref name="length"/> elements.</summary>
    /// <exception cref="ObjectDisposedException">The manager was disposed.</exception>
    public SharedArray<T> Array<T>(int length) where T : unmanaged => Keep(SharedArray<T>.Create(length));

    /// <summary>A new value holding <paramref name="initial"/>.</summary>
    /// <exception cref="ObjectDisposedException">The manager was disposed.</exception>
    public SharedValue<T> Value<T>(T initial = default) where T : unmanaged => Keep(SharedValue<T>.Create(initial));

    /// <summary>
    /// A new list holding <paramref name="items"/> in CPython's layout (Python: <c>smm.ShareableList(sequence)</c>);
    /// see the <c>ShareableList</c> class for the item types.
    /// </summary>
    /// <exception cref="ArgumentException">An item is of a type a ShareableList cannot hold.</exception>
    /// <exception cref="ObjectDisposedException">The manager was disposed.</exception>
    public ShareableList ShareableList(IEnumerable<object?> items) => Keep(Multiprocessing.ShareableList.Create(items));

    /// <summary>How many blocks, arrays, values and lists it holds.</summary>
    public int Count
    {
        get
        {
            lock (_lock) return _made.Count;
        }
    }

    private TMade Keep<TMade>(TMade made) where TMade : IDisposable
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                _made.Add(made);
                return made;
            }
        }
        made.Dispose();
        throw new ObjectDisposedException(nameof(SharedMemoryManager), "This SharedMemoryManager was disposed; its blocks are gone. Make a new one.");
    }

    /// <summary>Releases and unlinks everything made through it (processes that attached keep their mappings until they let go).</summary>
    public void Dispose()
    {
        List<IDisposable> made;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            made = [.. _made];
            _made.Clear();
        }
        foreach (var item in made) item.Dispose();
    }
}
