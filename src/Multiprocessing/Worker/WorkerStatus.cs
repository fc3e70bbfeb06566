using System.Diagnostics;
using System.Security.Cryptography;

namespace Multiprocessing;

/// <summary>
/// Three words of shared memory between a pool worker and its parent: the call the worker is
/// running (0 between calls), since when, and whether that call's user code has begun (a worker that
/// dies after taking a call but before its code starts did not die of the call). The worker writes it before and after each call,
/// with no system call, so the parent always knows which call a crash or a timeout belongs to,
/// even while finished results are still batched in the worker. The block is unlinked as soon as
/// both sides have mapped it; until then the resource tracker knows it, so nothing is left in /dev/shm
/// even when the parent is killed while its pool starts.
/// </summary>
internal sealed unsafe class WorkerStatus : IDisposable
{
    private readonly Mapping _mapping;
    private int _disposed;

    private WorkerStatus(Mapping mapping) => _mapping = mapping;

    public string Name => _mapping.Name;

    private long* Words => (long*)_mapping.Address;

    public static WorkerStatus Create()
    {
        var name = $"mpstatus_{Environment.ProcessId}_{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}";
        ResourceTracker.Register(name, inode: null);
        Mapping mapping;
        try
        {
            mapping = Mappings.Create(name, 3 * sizeof(long));
        }
        catch
        {
            ResourceTracker.Unregister(name);
            throw;
        }
        ResourceTracker.Register(name, mapping.Inode);
        return new WorkerStatus(mapping);
    }

    public static WorkerStatus Attach(string name) => new(Mappings.Attach(name));

    /// <summary>Removes the name; both mappings stay valid.</summary>
    public void Unlink()
    {
        if (Platform.Current.UnlinkSharedMemory(Name)) ResourceTracker.Unregister(Name);
    }

    /// <summary>In the worker: a call starts (the time first, so a reader that sees the id sees its time).</summary>
    public void Begin(long callId)
    {
        Volatile.Write(ref Words[1], Stopwatch.GetTimestamp());
        Volatile.Write(ref Words[0], callId);
    }

    /// <summary>In the worker: the running call's arguments are read and the user's code runs next.</summary>
    public void UserCodeStarts() => Volatile.Write(ref Words[2], Volatile.Read(ref Words[0]));

    /// <summary>In the worker: no call is running.</summary>
    public void End() => Volatile.Write(ref Words[0], 0);

    /// <summary>In the parent: the running call (0 for none) and its start, in <see cref="Stopwatch"/> ticks (one clock for all processes on Linux).</summary>
    public (long CallId, long Since) Read()
    {
        var id = Volatile.Read(ref Words[0]);
        return (id, Volatile.Read(ref Words[1]));
    }

    /// <summary>In the parent: whether the user's code of call <paramref name="callId"/> had begun.</summary>
    public bool UserCodeStarted(long callId) => Volatile.Read(ref Words[2]) == callId;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Mappings.Release(_mapping);
    }
}
