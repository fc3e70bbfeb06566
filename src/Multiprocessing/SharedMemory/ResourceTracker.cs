using System.Diagnostics;
using System.Globalization;

namespace Multiprocessing;

/// <summary>
/// Removes what a process created (shared-memory blocks, their spill segments, socket folders) and did not
/// remove itself, once that process is gone, like CPython's resource_tracker. One tracker per creating
/// process, started at the first creation: a tiny child (on Linux an awk script, about a millisecond and a
/// megabyte, not a .NET runtime) that reads "register" and "forget" lines on its standard input. The write
/// end of that pipe lives only in the creating process, so end-of-file means that process has exited,
/// however it died (SIGKILL included); then the tracker removes what is still registered, if the name still
/// denotes the same file, and exits. It ignores the terminal's SIGINT/SIGTERM/SIGHUP that hit the whole
/// process group, because its work starts when its parent's ends, and it writes nothing.
/// </summary>
internal static class ResourceTracker
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<(TrackedKind Kind, string Id), long?> Live = [];
    private static Process? _tracker;
    private static StreamWriter? _input;
    // Set when a tracker cannot be started (no /bin/sh or awk, as in a distroless image): do not pay two failed process
    // starts on every creation; the start-up sweep of the next program is what is left.
    private static bool _unavailable;

    /// <summary>Records a shared-memory block this process created; it is unlinked if this process exits without forgetting it.</summary>
    /// <param name="name">The block's name.</param>
    /// <param name="inode">Its inode, so a later block of the same name is not touched; null just before it is created.</param>
    /// <param name="withSpill">Also unlink the blocks named <c>NAME_*</c> (a queue's spill segments, made by any of its producers).</param>
    public static void Register(string name, long? inode, bool withSpill = false) =>
        Track(withSpill ? TrackedKind.SharedMemoryWithSpill : TrackedKind.SharedMemory, name, inode);

    /// <summary>Records a folder or file this process created (a socket folder, a socket); it is deleted (with its contents) if this process exits without forgetting it.</summary>
    public static void RegisterPath(string path) => Track(TrackedKind.FileOrFolder, path, inode: null);

    /// <summary>Forgets a block (its owner unlinked it).</summary>
    public static void Unregister(string name)
    {
        lock (Gate)
        {
            foreach (var kind in (ReadOnlySpan<TrackedKind>)[TrackedKind.SharedMemory, TrackedKind.SharedMemoryWithSpill])
                if (Live.Remove((kind, name))) Send(Line('-', kind, name, null));
        }
    }

    /// <summary>Forgets a folder or file (its owner deleted it).</summary>
    public static void UnregisterPath(string path)
    {
        lock (Gate)
        {
            if (Live.Remove((TrackedKind.FileOrFolder, path))) Send(Line('-', TrackedKind.FileOrFolder, path, null));
        }
    }

    private static void Track(TrackedKind kind, string id, long? inode)
    {
        // The tracker removes what it is told through a shell command; an id it could misread is not told (names
        // made here never hold such characters, and a folder under an odd TMPDIR is still swept at the next start).
        if (id.AsSpan().IndexOfAny("\t\n'") >= 0) return;
        lock (Gate)
        {
            Live[(kind, id)] = inode;
            Send(Line('+', kind, id, inode));
        }
    }

    private static string Line(char op, TrackedKind kind, string id, long? inode) =>
        $"{op}\t{Code(kind)}\t{id}\t{(inode is { } i ? i.ToString(CultureInfo.InvariantCulture) : "-")}\n";

    private static string Code(TrackedKind kind) => kind switch
    {
        TrackedKind.SharedMemory => "shm",
        TrackedKind.SharedMemoryWithSpill => "shm+",
        _ => "dir",
    };

    private static void Send(string line)
    {
        // A line shorter than PIPE_BUF is written atomically into the pipe: once written, the tracker
        // will read it even if this process is killed the next instant.
        if (_unavailable) return;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            try
            {
                if (_input is null) StartTracker();
                _input!.Write(line);
                return;
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // The tracker died (or could not start); start another and tell it everything live.
                DropTracker();
                if (attempt == 1 && e is System.ComponentModel.Win32Exception) _unavailable = true;
                if (attempt == 1)
                    Trace.TraceWarning($"Multiprocessing: the resource tracker is unavailable ({e.Message}); what a crash of this process leaves will be swept only by the next program that starts workers.");
            }
        }
    }

    private static void StartTracker()
    {
        // stdout and stderr are redirected, not inherited: a tracker holding the parent's stdout would keep a reader of that pipe waiting for its end.
        var tracker = Process.Start(Platform.Current.ResourceTrackerStartInfo()) ?? throw new InvalidOperationException("the resource tracker did not start");
        tracker.StandardInput.AutoFlush = true;
        _tracker = tracker;
        _input = tracker.StandardInput;
        foreach (var ((kind, id), inode) in Live) _input.Write(Line('+', kind, id, inode));
    }

    private static void DropTracker()
    {
        try { _input?.Dispose(); } catch (IOException) { }
        _input = null;
        _tracker?.Dispose();
        _tracker = null;
    }

    private enum TrackedKind { SharedMemory, SharedMemoryWithSpill, FileOrFolder }
}
