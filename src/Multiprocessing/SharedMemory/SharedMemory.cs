using System.Security.Cryptography;
using System.Text;

namespace Multiprocessing;

/// <summary>
/// A block of memory shared between processes, like Python's <c>multiprocessing.shared_memory.SharedMemory</c>:
/// a POSIX shared-memory object (<c>/dev/shm/NAME</c>) mapped into each process that uses it, so every
/// process sees the same bytes with no copy. Names are those of CPython: a block made here attaches in
/// Python with <c>SharedMemory(name=shm.Name)</c>, and a block made by Python attaches here with <see cref="Attach"/>.
/// </summary>
/// <remarks>
/// The process that creates a block owns it: disposing the owner's handle unlinks the name (processes
/// that have it mapped keep their view); if the owner exits or is killed without disposing, its
/// resource tracker unlinks it. Handles made by <see cref="Attach"/> or received by a worker never unlink.
/// A handle travels to a worker (captured or passed as an argument) by name and arrives attached.
/// Dispose every handle you are done with: the mapping is released when the last handle of the
/// block in this process is disposed (not by the garbage collector, since spans may still point into it).
/// </remarks>
public sealed class SharedMemory : IDisposable
{
    private readonly Mapping _mapping;
    private int _disposed;
    private int _tracked;

    private SharedMemory(Mapping mapping, bool isOwner)
    {
        _mapping = mapping;
        IsOwner = isOwner;
        _tracked = isOwner ? 1 : 0;
    }

    /// <summary>
    /// Creates a new block of <paramref name="size"/> bytes, filled with zeros, with mode 0600.
    /// With no <paramref name="name"/>, a fresh one like CPython's (<c>psm_</c> and random hex digits) is chosen.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is zero or negative.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid block name.</exception>
    /// <exception cref="IOException">A block with <paramref name="name"/> exists already, or /dev/shm is full.</exception>
    public static SharedMemory Create(long size, string? name = null)
    {
        if (size <= 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "A shared-memory block needs a size of at least 1 byte.");
        return new SharedMemory(CreateOwned(size, name is null ? null : NormalizeName(name), "psm_"), isOwner: true);
    }

    /// <summary>
    /// Attaches to an existing block by name (with or without CPython's leading slash); its
    /// <see cref="Size"/> is the size of the object, as Python reports it on Linux.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid block name.</exception>
    /// <exception cref="FileNotFoundException">No block has that name (never created, or already unlinked).</exception>
    /// <exception cref="UnauthorizedAccessException">The block belongs to another user.</exception>
    public static SharedMemory Attach(string name) => new(Mappings.Attach(NormalizeName(name)), isOwner: false);

    /// <summary>The block's name, without a leading slash: what Python's <c>SharedMemory(name=...)</c> takes.</summary>
    public string Name => _mapping.Name;

    /// <summary>The size in bytes.</summary>
    public long Size => _mapping.Size;

    /// <summary>True for the handle that created the block (and unlinks it on <see cref="Dispose"/>).</summary>
    public bool IsOwner { get; }

    /// <summary>The whole block. Blocks over 2 GiB do not fit a span: use <see cref="GetSpan"/>.</summary>
    /// <exception cref="ObjectDisposedException">This handle was disposed.</exception>
    /// <exception cref="InvalidOperationException">The block is larger than a span can be.</exception>
    public unsafe Span<byte> Span
    {
        get
        {
            var address = Address;
            if (Size > int.MaxValue)
                throw new InvalidOperationException($"The block '{Name}' is {Size} bytes, more than a Span<byte> can cover; use GetSpan(offset, length) for a window.");
            return new Span<byte>((void*)address, (int)Size);
        }
    }

    /// <summary>A window of <paramref name="length"/> bytes at <paramref name="offset"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The window does not lie inside the block.</exception>
    public unsafe Span<byte> GetSpan(long offset, int length)
    {
        var address = Address;
        if (offset < 0 || length < 0 || offset > Size - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"The window [{offset}, {offset}+{length}) is not inside the block '{Name}' of {Size} bytes.");
        return new Span<byte>((void*)(address + (nint)offset), length);
    }

    /// <summary>
    /// Removes the block's name so that no process can attach to it any more, as Python's <c>unlink()</c>;
    /// processes that have it mapped keep using it until they dispose their handles. Any handle may unlink;
    /// unlinking twice does nothing.
    /// </summary>
    public void Unlink()
    {
        if (Interlocked.Exchange(ref _tracked, 0) == 1) ResourceTracker.Unregister(Name);
        // Only remove the name if it still denotes our file: it may have been unlinked and reused.
        if (Platform.Current.StatSharedMemory(Name) is { } stat && stat.Inode == _mapping.Inode)
            Platform.Current.UnlinkSharedMemory(Name);
    }

    /// <summary>Releases this handle's mapping; the owner's handle also unlinks the block.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        if (IsOwner) Unlink();
        Mappings.Release(_mapping);
    }

    /// <inheritdoc />
    public override string ToString() => $"SharedMemory('{Name}', size={Size}{(IsOwner ? ", owner" : "")})";

    internal nint Address
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
            return _mapping.Address;
        }
    }

    /// <summary>Creates a block for a library object (an array, a value, a lock) and registers it with the tracker.</summary>
    /// <param name="size">Bytes.</param>
    /// <param name="name">The name, or null for a random one after <paramref name="prefix"/>.</param>
    /// <param name="prefix">How a random name starts.</param>
    /// <param name="withSpill">The block has spill segments named <c>NAME_N</c> (a queue's ring): the tracker sweeps them with it.</param>
    internal static Mapping CreateOwned(long size, string? name, string prefix, bool withSpill = false)
    {
        for (var attempt = 0; ; attempt++)
        {
            var chosen = name ?? prefix + Convert.ToHexString(RandomNumberGenerator.GetBytes(prefix == "psm_" ? 4 : 8)).ToLowerInvariant();
            Mapping mapping;
            // A random name is known to the tracker before it exists (by name alone), then by its inode: a process killed in
            // between leaves nothing. A name the caller chose may belong to someone else until our create succeeds.
            if (name is null) ResourceTracker.Register(chosen, inode: null, withSpill);
            try
            {
                mapping = Mappings.Create(chosen, size);
            }
            catch (IOException) when (name is null && attempt < 100 && Platform.Current.StatSharedMemory(chosen) is not null)
            {
                ResourceTracker.Unregister(chosen);
                continue; // a random name that is taken: draw another, as CPython does
            }
            catch
            {
                ResourceTracker.Unregister(chosen);
                throw;
            }
            ResourceTracker.Register(chosen, mapping.Inode, withSpill);
            return mapping;
        }
    }

    /// <summary>The mapping behind this handle (primitives hold a reference to it while they sleep on it).</summary>
    internal Mapping Mapping => _mapping;

    /// <summary>Wraps a mapping made by <see cref="CreateOwned"/> or <see cref="Mappings.Attach"/>.</summary>
    internal static SharedMemory Wrap(Mapping mapping, bool isOwner) => new(mapping, isOwner);

    /// <summary>Checks a name and drops CPython's optional leading slash.</summary>
    internal static string NormalizeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var trimmed = name.TrimStart('/');
        string? problem = trimmed switch
        {
            "" => "it is empty",
            "." or ".." => "'.' and '..' are not names",
            _ when trimmed.Contains('/') => "it contains '/' after the start (a name is one path component under /dev/shm)",
            _ when trimmed.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)) => "it contains whitespace or control characters",
            _ when Encoding.UTF8.GetByteCount(trimmed) > 255 => "it is longer than 255 bytes",
            _ => null,
        };
        if (problem is not null)
            throw new ArgumentException($"'{name}' is not a valid shared-memory name: {problem}. Use letters, digits, '_' and '-', e.g. \"psm_results\".", nameof(name));
        return trimmed;
    }
}
