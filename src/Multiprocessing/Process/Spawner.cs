using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Starts worker processes: this application started again (see <see cref="LaunchSpec"/> and
/// StartupHook), so a child resolves exactly the assemblies the parent does. Children connect back over a Unix domain socket in a private (0700)
/// folder and prove who they are with a per-child random token before anything else is read.
/// Process-global by nature: one listener and one spawning thread per parent process.
/// </summary>
internal static class Spawner
{
    /// <summary>How long a child has to start the runtime and connect back before it is declared failed.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(60);

    private static readonly Lazy<Listener> SharedListener = new(() => new Listener());
    private static readonly Lazy<LaunchSpec> SharedSpec = new(LaunchSpec.Resolve);

    private static readonly BlockingCollection<Action> SpawnQueue = StartSpawnThread();

    // Spare workers: started ahead, connected, waiting for their first frame. .NET cannot fork, so
    // this is its analogue of Python's forkserver: taking a spare costs a millisecond, not a runtime start.
    private static readonly ConcurrentQueue<ChildProcess> Spares = new();
    private static int _spareTarget = ReadSpareTarget();

    /// <summary>How many spares to keep (see <see cref="WorkerProcess.SpareWorkers"/>); lowering it ends the idle spares beyond it.</summary>
    public static int SpareTarget
    {
        get => Volatile.Read(ref _spareTarget);
        set
        {
            Volatile.Write(ref _spareTarget, value);
            while (Spares.Count > value && Spares.TryDequeue(out var extra))
            {
                extra.Kill();
                extra.Dispose();
            }
        }
    }
    // Never read: initializing it registers the exit handler of ReapSparesAtExit once, in the type initializer. Kept a field
    // initializer on purpose: a static constructor would make the class lose beforefieldinit and change when that runs.
    private static readonly bool SparesReapedAtExit = ReapSparesAtExit();
    private static int _sparesStarting;

    /// <summary>
    /// Spares would die with this process anyway (parent-death signal), but killed by the kernel once it is
    /// gone, nobody would remove their runtime's sockets from the temporary folder. Kill them first, so that
    /// their exit is seen and cleaned up after (half a second at most).
    /// </summary>
    private static bool ReapSparesAtExit()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            var killed = new List<ChildProcess>();
            while (Spares.TryDequeue(out var spare))
            {
                spare.Kill();
                killed.Add(spare);
            }
            foreach (var booting in BootingSpares.Keys)
            {
                booting.Kill();
                killed.Add(booting);
            }
            var deadline = Environment.TickCount64 + 500;
            foreach (var spare in killed) spare.Exited.Wait(TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64)));
        };
        return true;
    }

    /// <summary>The spares to keep at first: MULTIPROCESSING_SPARE_WORKERS when set, else 2 (0 turns them off).</summary>
    private static int ReadSpareTarget() =>
        int.TryParse(Environment.GetEnvironmentVariable("MULTIPROCESSING_SPARE_WORKERS"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            ? Math.Min(n, 64)
            : 2;

    /// <summary>
    /// A connected child that has said hello and waits for its Init frame: a spare when one is
    /// ready, else a new process. Either way another spare is started in the background, so only
    /// the first workers of a process pay for starting a runtime.
    /// </summary>
    /// <param name="name">The child's name, for logs and errors.</param>
    /// <param name="refillAtOnce">
    /// True to boot the replacement spare at once; false (a pool's first workers, which are about to keep
    /// the cores busy) to boot it when a core is idle.
    /// </param>
    public static ChildProcess Spawn(string name, bool refillAtOnce = true)
    {
        ChildProcess? child = null;
        while (Spares.TryDequeue(out var spare))
        {
            if (!spare.HasExited)
            {
                Volatile.Write(ref _sparesInUse, true);
                child = spare;
                child.Name = name;
                break;
            }
            spare.Dispose();
        }
        if (refillAtOnce) SparesWanted.Set();
        child ??= Start(name);
        Replenish();
        return child;
    }

    /// <summary>Set when a spawn wants its replacement spare at once, not when a core is idle.</summary>
    private static readonly ManualResetEventSlim SparesWanted = new();

    private const string SpareName = "spare";

    private static int _replenishScheduled;

    private static bool _sparesInUse;

    /// <summary>
    /// Tops the spares up, on a background thread. The first time, a little later rather than at once: the
    /// workers a process starts cold need the cores more than spares do. After a pool's first workers, only
    /// when a core is idle: a spare that boots while those workers keep every core busy steals a runtime
    /// start's worth of CPU from them (a tenth of a second each; seen as a 20% slower image pipeline on two
    /// cores). After any other spawn (a process, a pool's replacement worker), at once: more are likely to follow.
    /// </summary>
    private static void Replenish()
    {
        if (SpareTarget == 0 || Interlocked.Exchange(ref _replenishScheduled, 1) == 1) return;
        var delay = Volatile.Read(ref _sparesInUse) ? TimeSpan.Zero : ReplenishDelay;
        // A spare is an optimization: nothing here may fail a spawn or the process (a thread that cannot be
        // created, say under a container's pid limit, just means fewer spares).
        if (!TryStartThread("Multiprocessing spare keeper", () => KeepSpares(delay))) Interlocked.Exchange(ref _replenishScheduled, 0);
    }

    private static void KeepSpares(TimeSpan delay)
    {
        Thread.Sleep(delay);
        while (!SparesWanted.IsSet && !AnyCoreIdle()) SparesWanted.Wait(IdleProbe);
        SparesWanted.Reset();
        // A full fence: a Spawn that dequeues after this point starts a new keeper, one before it is seen below.
        Interlocked.Exchange(ref _replenishScheduled, 0);
        lock (TopUpLock)
        {
            while (Spares.Count + Volatile.Read(ref _sparesStarting) < SpareTarget)
            {
                Interlocked.Increment(ref _sparesStarting);
                var started = TryStartThread("Multiprocessing spare starter", () =>
                {
                    try { Spares.Enqueue(Start(SpareName)); }
                    catch (Exception) { /* the next Spawn starts its own */ }
                    finally { Interlocked.Decrement(ref _sparesStarting); }
                });
                if (!started)
                {
                    Interlocked.Decrement(ref _sparesStarting);
                    return;
                }
            }
        }
    }

    // Two keepers can overlap (one finishing as the next starts); counting and starting under one lock keeps
    // them from starting more spares than the target between them.
    private static readonly Lock TopUpLock = new();

    private static bool TryStartThread(string name, Action work)
    {
        try
        {
            new Thread(() => work()) { IsBackground = true, Name = name }.Start();
            return true;
        }
        catch (Exception e) when (e is OutOfMemoryException or ThreadStartException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>True when, over the next <see cref="IdleProbe"/>, the machine left at least half a core unused (or cannot tell).</summary>
    private static bool AnyCoreIdle()
    {
        var before = Platform.Current.SystemIdleTime();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (SparesWanted.Wait(IdleProbe)) return true;
        var after = Platform.Current.SystemIdleTime();
        if (before is not { } start || after is not { } end) return true;
        return (end - start) / clock.Elapsed >= 0.5;
    }

    private static readonly TimeSpan IdleProbe = TimeSpan.FromMilliseconds(100);

    private static readonly TimeSpan ReplenishDelay = TimeSpan.FromMilliseconds(200);

    /// <summary>Starts a new child process and returns once it has connected and said hello.</summary>
    private static ChildProcess Start(string name)
    {
        var spare = name == SpareName;
        var spec = SharedSpec.Value;
        var listener = SharedListener.Value;
        var token = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        var connected = listener.Expect(token);

        var info = spec.StartInfo(redirectInput: false);
        info.Environment[WorkerEnvironment.Socket] = listener.Path;
        info.Environment[WorkerEnvironment.Token] = token;
        info.Environment[WorkerEnvironment.ParentPid] = Environment.ProcessId.ToString();

        // PR_SET_PDEATHSIG follows the thread that forked the child: if a thread-pool thread started
        // it, the child would die when that thread retires. One long-lived thread starts every child.
        Process? process = null;
        Exception? failure = null;
        using (var done = new ManualResetEventSlim())
        {
            SpawnQueue.Add(() =>
            {
                try { process = Process.Start(info); }
                catch (Exception e) { failure = e; }
                finally { done.Set(); }
            });
            done.Wait();
        }
        if (process is null)
        {
            listener.Forget(token);
            throw new MultiprocessingException($"Could not start a worker process with '{spec.Host}': {failure?.Message}", failure);
        }

        var child = new ChildProcess(process, name);
        // A spare still booting at exit is reaped too (see ReapSparesAtExit); once connected it is queued.
        if (spare) BootingSpares[child] = true;
        try
        {
            return AwaitConnection(child, connected, listener, token, spec, name);
        }
        finally
        {
            if (spare) BootingSpares.TryRemove(child, out _);
        }
    }

    private static readonly ConcurrentDictionary<ChildProcess, bool> BootingSpares = new();

    private static ChildProcess AwaitConnection(ChildProcess child, Task<(FrameChannel Data, FrameChannel Control)> connected, Listener listener, string token, LaunchSpec spec, string name)
    {
        var exited = child.Exited;
        var winner = Task.WaitAny([connected, exited], ConnectTimeout);
        if (winner == 0 && connected.IsCompletedSuccessfully)
        {
            child.Attach(connected.Result.Data, connected.Result.Control);
            return child;
        }
        listener.Forget(token);
        if (winner == 1)
        {
            var status = exited.Result;
            throw new WorkerCrashedException(
                $"Worker process '{name}' (pid {child.Pid}) exited before it connected; command: {spec.Describe()}",
                child.Pid, status.Code, status.Signal, child.StderrTail());
        }
        child.Kill();
        throw new TimeoutException(
            $"Worker process '{name}' (pid {child.Pid}) did not connect within {ConnectTimeout.TotalSeconds:0} s; command: {spec.Describe()}. " +
            "The machine may be overloaded, or the worker host hung while starting.");
    }

    private static BlockingCollection<Action> StartSpawnThread()
    {
        var queue = new BlockingCollection<Action>();
        var thread = new Thread(() => { foreach (var work in queue.GetConsumingEnumerable()) work(); })
        {
            IsBackground = true,
            Name = "Multiprocessing spawner",
        };
        thread.Start();
        return queue;
    }

    /// <summary>
    /// How to start this application again as a worker: its own executable (an apphost, a self-contained or
    /// single-file app), or the <c>dotnet</c> host with this process's runtime files and entry assembly
    /// (<c>dotnet app.dll</c>, test hosts). Either way the library's startup hook takes over before <c>Main</c>.
    /// </summary>
    internal sealed record LaunchSpec(string Host, IReadOnlyList<string> Arguments)
    {
        /// <summary>The worker's command line, with stdout and stderr (and optionally stdin) redirected.</summary>
        public ProcessStartInfo StartInfo(bool redirectInput)
        {
            var info = new ProcessStartInfo(Host)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = redirectInput,
            };
            foreach (var argument in Arguments) info.ArgumentList.Add(argument);
            info.Environment[WorkerEnvironment.StartupHooks] = WorkerEnvironment.ChildStartupHooks();
            WorkerEnvironment.SetRuntimeDiagnostics(info.Environment);
            return info;
        }

        public string Describe() => string.Join(' ', Arguments.Prepend(Host));

        [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000", Justification = "Location is read only when the dotnet host runs an entry assembly from a file, which a single-file app never does.")]
        public static LaunchSpec Resolve()
        {
            if (!System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported)
                throw new NotSupportedException(
                    "Multiprocessing cannot start workers in a Native AOT application: a worker runs your methods and rebuilds your types " +
                    "from their IL at run time, and Native AOT removes it. Publish without PublishAot; a self-contained single-file app " +
                    "(-r <rid> --self-contained -p:PublishSingleFile=true) also ships as one file and can start workers.");
            if (AppContext.TryGetSwitch("System.StartupHookProvider.IsSupported", out var hooks) && !hooks)
                throw new NotSupportedException(
                    "Multiprocessing cannot start workers because this application was built with StartupHookSupport=false (PublishTrimmed sets it): " +
                    "a worker is this application started again, and the library takes over through a startup hook before Main runs. " +
                    "Remove <StartupHookSupport>false</StartupHookSupport> (and PublishTrimmed) from the project.");
            var self = Environment.ProcessPath
                ?? throw new NotSupportedException("Multiprocessing cannot start workers: the runtime does not know this process's executable (Environment.ProcessPath is null).");
            var muxer = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
            if (!string.Equals(Path.GetFileName(self), muxer, StringComparison.OrdinalIgnoreCase)) return new LaunchSpec(self, []);

            // Started as `dotnet app.dll` or `dotnet exec ... testhost.dll`: the same host, runtime files and entry assembly.
            var entry = Assembly.GetEntryAssembly();
            if (entry is null || string.IsNullOrEmpty(entry.Location))
                throw new NotSupportedException("Multiprocessing cannot start workers: this process was started by the dotnet host, but its entry assembly is not a file.");
            var arguments = new List<string> { "exec" };
            // The deps file this process was started with is the dependency set a child must use.
            var depsFile = (AppContext.GetData("APP_CONTEXT_DEPS_FILES") as string)?
                .Split(';', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(f => File.Exists(f) && !IsFrameworkDeps(f));
            var runtimeConfig = depsFile is null ? null : depsFile[..^".deps.json".Length] + ".runtimeconfig.json";
            if (runtimeConfig is null || !File.Exists(runtimeConfig)) runtimeConfig = Path.ChangeExtension(entry.Location, ".runtimeconfig.json");
            if (File.Exists(runtimeConfig)) arguments.AddRange(["--runtimeconfig", runtimeConfig]);
            if (depsFile is not null) arguments.AddRange(["--depsfile", depsFile]);
            arguments.Add(entry.Location);
            return new LaunchSpec(self, arguments);
        }

        private static bool IsFrameworkDeps(string path) => path.Contains($"{Path.DirectorySeparatorChar}shared{Path.DirectorySeparatorChar}Microsoft.", StringComparison.Ordinal);
    }

    /// <summary>The Unix socket that children connect to.</summary>
    private sealed class Listener
    {
        private readonly Socket _socket;
        private readonly ConcurrentDictionary<string, Rendezvous> _pending = new();
        private readonly string _folder;

        public string Path { get; }

        public Listener()
        {
            // A courtesy to earlier runs, off the first spawn's path: /tmp can hold thousands of entries.
            new Thread(SweepFoldersOfDeadParents) { IsBackground = true, Name = "Multiprocessing sweeper" }.Start();
            _folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{FolderPrefix}{Environment.ProcessId}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4))}");
            ResourceTracker.RegisterPath(_folder); // before it exists: a kill in between leaves nothing
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(_folder);
            else Directory.CreateDirectory(_folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Path = System.IO.Path.Combine(_folder, "s");
            _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _socket.Bind(new UnixDomainSocketEndPoint(Path));
            _socket.Listen(128);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Cleanup();
            new Thread(AcceptLoop) { IsBackground = true, Name = "Multiprocessing listener" }.Start();
        }

        /// <summary>Completes when the child with this token has connected both its channels.</summary>
        public Task<(FrameChannel Data, FrameChannel Control)> Expect(string token)
        {
            var rendezvous = new Rendezvous();
            _pending[token] = rendezvous;
            return rendezvous.Both();
        }

        public void Forget(string token) => _pending.TryRemove(token, out _);

        private void AcceptLoop()
        {
            while (true)
            {
                Socket client;
                try { client = _socket.Accept(); }
                catch (Exception) { return; }
                ThreadPool.UnsafeQueueUserWorkItem(static state => state.self.Handshake(state.client), (self: this, client), preferLocal: false);
            }
        }

        private void Handshake(Socket client)
        {
            var channel = new FrameChannel(client);
            try
            {
                client.ReceiveTimeout = 10_000;
                if (!channel.TryReceive(out var frame)) { channel.Dispose(); return; }
                var reader = new MessagePackReader(frame);
                if ((MessageKind)reader.ReadByte() != MessageKind.Hello) { channel.Dispose(); return; }
                var token = reader.ReadString() ?? "";
                var role = reader.ReadInt32();
                client.ReceiveTimeout = 0;
                if (!_pending.TryGetValue(token, out var rendezvous)) { channel.Dispose(); return; }
                var slot = role == 0 ? rendezvous.Data : rendezvous.Control;
                if (!slot.TrySetResult(channel)) channel.Dispose();
                if (rendezvous.Data.Task.IsCompleted && rendezvous.Control.Task.IsCompleted) _pending.TryRemove(token, out _);
            }
            catch (Exception)
            {
                channel.Dispose();
            }
        }

        private const string FolderPrefix = "multiprocessing-";
        // A manager's socket folder: multiprocessing-manager-<pid>-<random> (see Manager.StartAsync).
        private const string ManagerFolderInfix = "manager-";
        // A listener's socket folder: multiprocessing-listener-<pid>-<random> (see ConnectionAddress.PrivateFolder).
        private const string ListenerFolderInfix = "listener-";

        /// <summary>
        /// A parent killed with SIGKILL cannot delete its socket folder; the next parent to start
        /// listening removes the folders whose owner (the pid in the name) no longer exists.
        /// </summary>
        private static void SweepFoldersOfDeadParents()
        {
            try
            {
                foreach (var folder in Directory.EnumerateDirectories(System.IO.Path.GetTempPath(), FolderPrefix + "*"))
                {
                    var rest = System.IO.Path.GetFileName(folder)[FolderPrefix.Length..];
                    if (rest.StartsWith(ManagerFolderInfix, StringComparison.Ordinal)) rest = rest[ManagerFolderInfix.Length..];
                    else if (rest.StartsWith(ListenerFolderInfix, StringComparison.Ordinal)) rest = rest[ListenerFolderInfix.Length..];
                    var dash = rest.IndexOf('-');
                    if (dash <= 0 || !int.TryParse(rest.AsSpan(0, dash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)) continue;
                    if (pid == Environment.ProcessId || Platform.Current.ProcessExists(pid)) continue;
                    try { Directory.Delete(folder, recursive: true); }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Sweeping is a courtesy; failing to do it must not stop workers from starting.
            }
            try
            {
                // The diagnostic and debugger sockets that a .NET runtime killed before a clean exit leaves (workers of
                // earlier versions, or started with MULTIPROCESSING_WORKER_DIAGNOSTICS=1, and any other .NET program):
                // clr-debug-pipe-<pid>-<start>-in/out, dotnet-diagnostic-<pid>-<start>-socket, kept while that process lives.
                foreach (var pattern in (string[])["clr-debug-pipe-*", "dotnet-diagnostic-*"])
                    foreach (var file in Directory.EnumerateFiles(System.IO.Path.GetTempPath(), pattern))
                    {
                        var parts = System.IO.Path.GetFileName(file)[(pattern.Length - 1)..].Split('-');
                        if (parts.Length == 3
                            && int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)
                            && long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var start)
                            && Platform.Current.ProcessStartKey(pid) != start)
                            Platform.Current.RemoveRuntimeLeftovers(pid, start);
                    }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
            try
            {
                // A pool's status blocks (WorkerStatus) of a parent killed before its workers were ready.
                foreach (var block in Directory.EnumerateFiles("/dev/shm", "mpstatus_*"))
                {
                    var parts = System.IO.Path.GetFileName(block).Split('_');
                    if (parts.Length == 3 && int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)
                        && pid != Environment.ProcessId && !Platform.Current.ProcessExists(pid))
                        File.Delete(block);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        /// <summary>A child's two connections: calls and results on one, cancellation on the other.</summary>
        private sealed class Rendezvous
        {
            public readonly TaskCompletionSource<FrameChannel> Data = new(TaskCreationOptions.RunContinuationsAsynchronously);
            public readonly TaskCompletionSource<FrameChannel> Control = new(TaskCreationOptions.RunContinuationsAsynchronously);

            public async Task<(FrameChannel, FrameChannel)> Both() => (await Data.Task.ConfigureAwait(false), await Control.Task.ConfigureAwait(false));
        }

        private void Cleanup()
        {
            try { _socket.Dispose(); } catch (Exception) { }
            try { Directory.Delete(_folder, recursive: true); } catch (Exception) { }
        }
    }
}
