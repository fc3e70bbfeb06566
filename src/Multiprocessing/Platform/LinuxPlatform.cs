using System.Runtime.InteropServices;

namespace Multiprocessing;

/// <summary>Linux system calls through libc.</summary>
internal sealed partial class LinuxPlatform : IPlatform
{
    // The exact soname: "libc" alone sends the loader through several failing guesses (libc.so is a linker script).
    private const string Libc = "libc.so.6";

    private const int PR_SET_PDEATHSIG = 1;

    private const int EPERM = 1, ENOENT = 2, EINTR = 4, EAGAIN = 11, EACCES = 13, EEXIST = 17, ETIMEDOUT = 110;
    private const int O_RDWR = 2, O_RDONLY = 0, O_CREAT = 0x40, O_EXCL = 0x80, O_CLOEXEC = 0x80000;
    private const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
    // Shared (non-private) futex operations: the word lives in a MAP_SHARED mapping seen by several processes.
    private const int FUTEX_WAIT = 0, FUTEX_WAKE = 1;

    // POSIX shared memory on Linux is tmpfs at /dev/shm: shm_open("/NAME") opens /dev/shm/NAME, which is
    // what CPython's multiprocessing.shared_memory does, so names are shared with Python.
    private const string ShmFolder = "/dev/shm/";

    private static readonly bool Arm64 = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
    private static readonly nint SysFutex = Arm64 ? 98 : 202;
    private static readonly nint SysFstat = Arm64 ? 80 : 5;
    private static readonly int ONoFollow = Arm64 ? 0x8000 : 0x20000;

    public bool SetParentDeathSignal() => prctl(PR_SET_PDEATHSIG, (nuint)Platform.SigKill, 0, 0, 0) == 0;

    public int GetParentProcessId() => getppid();

    public bool SendSignal(int pid, int signal) => kill(pid, signal) == 0;

    public void ExitNow(int code) => _exit(code);

    public bool ProcessExists(int pid) => kill(pid, 0) == 0 || Marshal.GetLastPInvokeError() == EPERM;

    public unsafe FutexWaitResult FutexWait(nint address, int expected, int timeoutMilliseconds)
    {
        Timespec timeout = default;
        Timespec* relative = null;
        if (timeoutMilliseconds >= 0)
        {
            timeout = new Timespec { Seconds = timeoutMilliseconds / 1000, Nanoseconds = timeoutMilliseconds % 1000 * 1_000_000L };
            relative = &timeout;
        }
        var r = syscall(SysFutex, address, FUTEX_WAIT, expected, (nint)relative, 0, 0);
        if (r == 0) return FutexWaitResult.Woken;
        return Marshal.GetLastPInvokeError() switch
        {
            EAGAIN => FutexWaitResult.ValueChanged,
            ETIMEDOUT => FutexWaitResult.TimedOut,
            EINTR => FutexWaitResult.Woken,
            var errno => throw new InvalidOperationException($"futex wait failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})."),
        };
    }

    public int FutexWake(nint address, int count) => (int)syscall(SysFutex, address, FUTEX_WAKE, count, 0, 0, 0);

    public SharedMapping CreateSharedMemory(string name, long size)
    {
        var fd = open(ShmFolder + name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | ONoFollow, 0x180 /* 0600 */);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EEXIST)
                throw new IOException($"A shared-memory block named '{name}' already exists (/dev/shm/{name}). Choose another name, pass null to get a fresh one, or attach to it with Attach(\"{name}\").");
            throw Failure(errno, $"create the shared-memory block '{name}'");
        }
        try
        {
            if (ftruncate(fd, size) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                unlink(ShmFolder + name);
                throw Failure(errno, $"size the shared-memory block '{name}' to {size} bytes (is /dev/shm full? see df -h /dev/shm)");
            }
            var (inode, _) = Fstat(fd);
            var address = mmap(0, (nuint)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (address == -1)
            {
                var errno = Marshal.GetLastPInvokeError();
                unlink(ShmFolder + name);
                throw Failure(errno, $"map the shared-memory block '{name}' ({size} bytes)");
            }
            return new SharedMapping(address, size, inode);
        }
        finally
        {
            close(fd);
        }
    }

    public SharedMapping OpenSharedMemory(string name)
    {
        var fd = open(ShmFolder + name, O_RDWR | O_CLOEXEC | ONoFollow, 0);
        if (fd < 0) throw Failure(Marshal.GetLastPInvokeError(), $"attach to the shared-memory block '{name}'");
        try
        {
            var (inode, size) = Fstat(fd);
            if (size == 0)
                throw new InvalidOperationException($"The shared-memory block '{name}' has size 0 (its creator has not sized it yet, or it is not a block made by Create); there is nothing to map.");
            var address = mmap(0, (nuint)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (address == -1) throw Failure(Marshal.GetLastPInvokeError(), $"map the shared-memory block '{name}' ({size} bytes)");
            return new SharedMapping(address, size, inode);
        }
        finally
        {
            close(fd);
        }
    }

    public (long Inode, long Size)? StatSharedMemory(string name)
    {
        var fd = open(ShmFolder + name, O_RDONLY | O_CLOEXEC | ONoFollow, 0);
        if (fd < 0) return null;
        try { return Fstat(fd); }
        finally { close(fd); }
    }

    public void Unmap(nint address, long size) => munmap(address, (nuint)size);

    public bool UnlinkSharedMemory(string name) => unlink(ShmFolder + name) == 0;

    private static unsafe (long Inode, long Size) Fstat(int fd)
    {
        // struct stat: st_ino at offset 8 and st_size at offset 48 on both x86-64 and arm64.
        var buffer = stackalloc long[32];
        if (syscall(SysFstat, fd, (nint)buffer, 0, 0, 0, 0) != 0)
            throw Failure(Marshal.GetLastPInvokeError(), "stat a shared-memory block");
        return (buffer[1], buffer[6]);
    }

    private static Exception Failure(int errno, string what)
    {
        var message = $"Could not {what}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).";
        return errno switch
        {
            ENOENT => new FileNotFoundException(message + " No such block exists: it was never created, or its creator unlinked it (disposed it or exited)."),
            EACCES or EPERM => new UnauthorizedAccessException(message + " Blocks are created with mode 0600, so only their creator's user can attach."),
            _ => new IOException(message),
        };
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport(Libc)]
    private static partial int getppid();

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int kill(int pid, int sig);

    [LibraryImport(Libc)]
    private static partial void _exit(int status);

    // syscall(2) is variadic; on Linux x86-64 and arm64 integer arguments travel in the same registers either way.
    [LibraryImport(Libc, SetLastError = true)]
    private static partial nint syscall(nint number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, uint mode);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int ftruncate(int fd, long length);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial nint mmap(nint address, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport(Libc, SetLastError = true)]
    private static partial int munmap(nint address, nuint length);

    [LibraryImport(Libc, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlink(string path);

    public long? ResidentMemory(int pid)
    {
        // /proc/PID/statm: "size resident shared ..." in pages.
        try
        {
            var fields = File.ReadAllText($"/proc/{pid}/statm").Split(' ');
            return long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    public TimeSpan? SystemIdleTime()
    {
        // First line of /proc/stat: "cpu  user nice system idle iowait ..." in clock ticks (USER_HZ, 100 on Linux).
        try
        {
            using var reader = new StreamReader("/proc/stat");
            var fields = reader.ReadLine()?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields is not { Length: > 5 } || fields[0] != "cpu") return null;
            var ticks = long.Parse(fields[4], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[5], System.Globalization.CultureInfo.InvariantCulture);
            return TimeSpan.FromMilliseconds(ticks * 10);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            return null;
        }
    }

    public long? ProcessStartKey(int pid)
    {
        // Field 22 of /proc/<pid>/stat, counted after the ")" that ends the command name (which may hold spaces).
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > 19 && long.TryParse(fields[19], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void RemoveRuntimeLeftovers(int pid, long startKey)
    {
        // The runtime names them clr-debug-pipe-<pid>-<key>-in/-out and dotnet-diagnostic-<pid>-<key>-socket,
        // in $TMPDIR (or /tmp), the key being the process's start time, and removes them only on a clean exit.
        var folder = Path.GetTempPath();
        foreach (var name in (string[])[$"clr-debug-pipe-{pid}-{startKey}-in", $"clr-debug-pipe-{pid}-{startKey}-out", $"dotnet-diagnostic-{pid}-{startKey}-socket"])
        {
            try { File.Delete(Path.Combine(folder, name)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort: a leftover costs a directory entry, nothing more.
            }
        }
    }

    public System.Diagnostics.ProcessStartInfo ResourceTrackerStartInfo()
    {
        var info = new System.Diagnostics.ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // The system's own awk, stat and rm, whatever PATH the application runs with (a self-contained app may have none).
        info.Environment["PATH"] = "/usr/bin:/bin";
        // Ignored signals stay ignored across exec: awk (and the stat/rm it runs) outlive a Ctrl+C that ends the parent.
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("trap '' INT TERM HUP QUIT; exec awk \"$1\"");
        info.ArgumentList.Add("multiprocessing-resource-tracker");
        info.ArgumentList.Add(TrackerScript);
        return info;
    }

    // IDs never hold a tab, newline or single quote (ResourceTracker refuses them), so single quotes make them literal.
    private const string TrackerScript = """
        BEGIN { FS = "\t" }
        $1 == "+" { live[$2 FS $3] = $4; next }
        $1 == "-" { delete live[$2 FS $3]; next }
        END {
            for (key in live) {
                split(key, part, FS)
                path = (part[1] == "dir") ? part[2] : "/dev/shm/" part[2]
                same = (live[key] == "-") ? "[ -e '" path "' ]" : "[ \"$(stat -c %i '" path "' 2>/dev/null)\" = '" live[key] "' ]"
                remove = "rm -rf '" path "'"
                if (part[1] == "shm+") remove = remove "; rm -f '" path "'_*"
                system(same " && { " remove "; }")
            }
        }
        """;
}
