using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Multiprocessing.Interop;

namespace Multiprocessing;

/// <summary>
/// Unlinks the shared-memory blocks a process created and did not dispose, once that process is gone,
/// like CPython's resource_tracker. The tracker is the application started again in tracker mode (see StartupHook), one per
/// process that creates blocks, started on the first creation. It reads "+name inode" and "-name" lines
/// on its standard input; the write end lives only in the creating process, so end-of-file means that
/// process has exited, however it died (SIGKILL included). Then it unlinks what is still registered,
/// if the name still denotes the same file, and exits. It does not die with its parent (no
/// PDEATHSIG) and ignores the terminal's SIGINT/SIGTERM/SIGHUP that hit the whole process group,
/// because its work starts when its parent's ends. It writes nothing: no warnings about blocks the
/// program meant to leave to it.
/// </summary>
internal static class ResourceTracker
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, long> Live = new(StringComparer.Ordinal);
    private static Process? _tracker;
    private static StreamWriter? _input;

    /// <summary>Records a block this process created; it is unlinked if this process exits without unregistering it.</summary>
    public static void Register(string name, long inode)
    {
        lock (Gate)
        {
            Live[name] = inode;
            Send($"+{name} {inode.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// <summary>Forgets a block (its owner unlinked it).</summary>
    public static void Unregister(string name)
    {
        lock (Gate)
        {
            if (Live.Remove(name)) Send("-" + name);
        }
    }

    /// <summary>The tracker's pid, or null before the first block was created (for tests).</summary>
    internal static int? TrackerPid
    {
        get { lock (Gate) return _tracker?.Id; }
    }

    private static void Send(string line)
    {
        // A line shorter than PIPE_BUF is written atomically into the pipe: once written, the tracker
        // will read it even if this process is killed the next instant.
        for (var attempt = 0; attempt < 2; attempt++)
        {
            try
            {
                if (_input is null) StartTracker();
                _input!.Write(line + "\n");
                return;
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // The tracker died (or could not start); start another and tell it everything live.
                DropTracker();
                if (attempt == 1)
                    Trace.TraceWarning($"Multiprocessing: the shared-memory resource tracker is unavailable ({e.Message}); blocks leaked by a crash of this process will not be swept.");
            }
        }
    }

    private static void StartTracker()
    {
        var spec = Spawner.Launch;
        // stdout and stderr are redirected, not inherited: a tracker holding the parent's stdout would keep a reader of that pipe waiting for its end.
        var info = spec.StartInfo(redirectInput: true);
        info.Environment[WorkerEnvironment.ResourceTracker] = "1";
        info.Environment["DOTNET_TieredPGO"] = "0";
        info.Environment["DOTNET_gcConcurrent"] = "0";
        info.Environment["DOTNET_GCHeapHardLimit"] = "0x4000000";

        var tracker = Process.Start(info) ?? throw new InvalidOperationException("the resource tracker did not start");
        tracker.StandardInput.AutoFlush = true;
        _tracker = tracker;
        _input = tracker.StandardInput;
        foreach (var (name, inode) in Live)
            _input.Write($"+{name} {inode.ToString(CultureInfo.InvariantCulture)}\n");
    }

    private static void DropTracker()
    {
        try { _input?.Dispose(); } catch (IOException) { }
        _input = null;
        _tracker = null;
    }

    /// <summary>The tracker process's main loop (entered from the startup hook).</summary>
    public static int Serve()
    {
        // Ctrl+C in a terminal signals the whole foreground process group; the parent may die of it, we must not.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, static c => c.Cancel = true);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, static c => c.Cancel = true);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, static c => c.Cancel = true);
        using var sigquit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, static c => c.Cancel = true);

        var live = new Dictionary<string, long>(StringComparer.Ordinal);
        using (var reader = new StreamReader(Console.OpenStandardInput()))
        {
            try
            {
                while (reader.ReadLine() is { } line)
                {
                    if (line.Length < 2) continue;
                    if (line[0] == '+')
                    {
                        var space = line.LastIndexOf(' ');
                        if (space > 1 && long.TryParse(line.AsSpan(space + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out var inode))
                            live[line[1..space]] = inode;
                    }
                    else if (line[0] == '-') live.Remove(line[1..]);
                }
            }
            catch (IOException)
            {
                // As good as end-of-file: the parent is gone.
            }
        }
        foreach (var (name, inode) in live)
        {
            if (Platform.Current.StatSharedMemory(name) is { } stat && stat.Inode == inode)
                Platform.Current.UnlinkSharedMemory(name);
        }
        return 0;
    }
}
