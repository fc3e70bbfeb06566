using System.Runtime.CompilerServices;

namespace Multiprocessing;

/// <summary>
/// An array of <typeparamref name="T"/> in shared memory, like Python's <c>multiprocessing.Array</c>
/// without its lock: every process that holds it reads and writes the same elements, with no copy.
/// Captured by a worker lambda or passed as an argument, it arrives attached to the same memory.
/// </summary>
/// <typeparam name="T">An unmanaged type (numbers, <see cref="bool"/>, <see cref="char"/>, structs of them).</typeparam>
/// <remarks>
/// Elements are plain memory: concurrent writers to one element need a <see cref="ProcessLock"/> or
/// <see cref="Interlocked"/> on <c>ref array[i]</c>. The creator owns the block; see <see cref="SharedMemory"/> for lifetimes.
/// </remarks>
public sealed unsafe class SharedArray<T> : IDisposable where T : unmanaged
{
    private readonly SharedMemory _memory;

    private SharedArray(SharedMemory memory, int length)
    {
        _memory = memory;
        Length = length;
    }

    /// <summary>Creates an array of <paramref name="length"/> zeroed elements in a new shared-memory block.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    public static SharedArray<T> Create(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        // A block cannot be empty; an empty array still gets one byte so that it has a name to travel by.
        var bytes = Math.Max(1L, (long)length * sizeof(T));
        return new SharedArray<T>(SharedMemory.Wrap(SharedMemory.CreateOwned(bytes, null, "psm_"), isOwner: true), length);
    }

    /// <summary>Creates an array holding a copy of <paramref name="values"/>.</summary>
    public static SharedArray<T> From(ReadOnlySpan<T> values)
    {
        var array = Create(values.Length);
        values.CopyTo(array.Span);
        return array;
    }

    /// <summary>
    /// Attaches to an existing block (made here or by Python, e.g. the buffer of a NumPy array) and views it
    /// as <paramref name="length"/> elements; by default as many whole elements as fit.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The block is smaller than <paramref name="length"/> elements.</exception>
    public static SharedArray<T> Attach(string name, int? length = null)
    {
        var memory = SharedMemory.Attach(name);
        var fits = memory.Size / sizeof(T);
        var wanted = length ?? (int)Math.Min(fits, int.MaxValue);
        if (wanted < 0 || wanted > fits)
        {
            memory.Dispose();
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"The block '{name}' holds {memory.Size} bytes, room for {fits} elements of {typeof(T).Name} ({sizeof(T)} bytes each), not {wanted}.");
        }
        return new SharedArray<T>(memory, wanted);
    }

    /// <summary>The number of elements.</summary>
    public int Length { get; }

    /// <summary>The name of the shared-memory block (attachable from Python with <c>SharedMemory(name=...)</c>).</summary>
    public string Name => _memory.Name;

    /// <summary>True for the handle that created the array and unlinks it on <see cref="Dispose"/>.</summary>
    public bool IsOwner => _memory.IsOwner;

    /// <summary>All elements.</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    public Span<T> Span => new((void*)_memory.Address, Length);

    /// <summary>The element at <paramref name="index"/>, by reference: <c>a[i] += 1</c> writes the shared memory.</summary>
    /// <exception cref="IndexOutOfRangeException"><paramref name="index"/> is outside [0, <see cref="Length"/>).</exception>
    public ref T this[int index]
    {
        get
        {
            var address = _memory.Address;
            if ((uint)index >= (uint)Length)
                throw new IndexOutOfRangeException($"Index {index} is outside the shared array of length {Length}.");
            return ref Unsafe.Add(ref Unsafe.AsRef<T>((void*)address), index);
        }
    }

    /// <summary>Copies the elements into a new managed array.</summary>
    public T[] ToArray() => Span.ToArray();

    /// <summary>Releases this handle's mapping; the owner's handle also unlinks the block.</summary>
    public void Dispose() => _memory.Dispose();

    /// <inheritdoc />
    public override string ToString() => $"SharedArray<{typeof(T).Name}>('{Name}', length={Length})";

    internal static SharedArray<T> FromHandle(string name, int length)
    {
        var memory = SharedMemory.Attach(name);
        if (memory.Size < (long)length * sizeof(T))
        {
            memory.Dispose();
            throw new SerializationException($"The shared array '{name}' is smaller than the {length} elements of {typeof(T).Name} its handle describes; parent and worker disagree on the element type.");
        }
        return new SharedArray<T>(memory, length);
    }
}
