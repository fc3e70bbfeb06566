using System.Runtime.CompilerServices;

namespace Multiprocessing;

/// <summary>
/// One value of <typeparamref name="T"/> in shared memory, like Python's <c>multiprocessing.Value</c>
/// without its lock. <see cref="Value"/> is a reference into the shared memory; for <see cref="int"/> and
/// <see cref="long"/>, <see cref="SharedValueAtomics"/> adds atomic <c>Add</c>, <c>Exchange</c> and <c>CompareExchange</c>.
/// Captured by a worker lambda or passed as an argument, it arrives attached to the same memory.
/// </summary>
/// <typeparam name="T">An unmanaged type.</typeparam>
public sealed unsafe class SharedValue<T> : IDisposable where T : unmanaged
{
    private readonly SharedMemory _memory;

    private SharedValue(SharedMemory memory) => _memory = memory;

    /// <summary>Creates a shared value holding <paramref name="initial"/>.</summary>
    public static SharedValue<T> Create(T initial = default)
    {
        var value = new SharedValue<T>(SharedMemory.Wrap(SharedMemory.CreateOwned(sizeof(T), null, "psm_"), isOwner: true));
        value.Value = initial;
        return value;
    }

    /// <summary>The value, by reference: reads and writes go to the shared memory. Plain (not atomic) access.</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public ref T Value => ref Unsafe.AsRef<T>((void*)_memory.Address);

    /// <summary>The name of the shared-memory block.</summary>
    public string Name => _memory.Name;

    /// <summary>True for the handle that created the value and unlinks it on <see cref="Dispose"/>.</summary>
    public bool IsOwner => _memory.IsOwner;

    /// <summary>Releases this handle's mapping; the owner's handle also unlinks the block.</summary>
    public void Dispose() => _memory.Dispose();

    /// <inheritdoc />
    public override string ToString() => $"SharedValue<{typeof(T).Name}>('{Name}')";

    internal static SharedValue<T> FromHandle(string name)
    {
        var memory = SharedMemory.Attach(name);
        if (memory.Size < sizeof(T))
        {
            memory.Dispose();
            throw new SerializationException($"The shared value '{name}' is smaller than a {typeof(T).Name}; parent and worker disagree on its type.");
        }
        return new SharedValue<T>(memory);
    }
}

/// <summary>Atomic operations on shared integers, across processes (<see cref="Interlocked"/> on the shared memory).</summary>
public static class SharedValueAtomics
{
    /// <summary>Adds <paramref name="delta"/> atomically and returns the new value.</summary>
    public static int Add(this SharedValue<int> value, int delta) => Interlocked.Add(ref value.Value, delta);

    /// <summary>Adds <paramref name="delta"/> atomically and returns the new value.</summary>
    public static long Add(this SharedValue<long> value, long delta) => Interlocked.Add(ref value.Value, delta);

    /// <summary>Stores <paramref name="newValue"/> atomically and returns the previous value.</summary>
    public static int Exchange(this SharedValue<int> value, int newValue) => Interlocked.Exchange(ref value.Value, newValue);

    /// <summary>Stores <paramref name="newValue"/> atomically and returns the previous value.</summary>
    public static long Exchange(this SharedValue<long> value, long newValue) => Interlocked.Exchange(ref value.Value, newValue);

    /// <summary>Stores <paramref name="newValue"/> if the value equals <paramref name="comparand"/>; returns the value seen.</summary>
    public static int CompareExchange(this SharedValue<int> value, int newValue, int comparand) => Interlocked.CompareExchange(ref value.Value, newValue, comparand);

    /// <summary>Stores <paramref name="newValue"/> if the value equals <paramref name="comparand"/>; returns the value seen.</summary>
    public static long CompareExchange(this SharedValue<long> value, long newValue, long comparand) => Interlocked.CompareExchange(ref value.Value, newValue, comparand);

    /// <summary>Reads the value with acquire semantics (sees writes other processes published before it).</summary>
    public static int Read(this SharedValue<int> value) => Volatile.Read(ref value.Value);

    /// <summary>Reads the value atomically with acquire semantics.</summary>
    public static long Read(this SharedValue<long> value) => Volatile.Read(ref value.Value);
}
