using System.Collections.Concurrent;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Runs a delegate in a new process, like Python's <c>multiprocessing.Process</c>. The delegate
/// (a static method or a lambda; a closure's captured values travel with it) is shipped at
/// <see cref="Start"/>; what cannot travel is refused there, before any process starts.
/// An exception the target throws is rebuilt in <see cref="Exception"/> and the exit code is 1;
/// a crash (stack overflow, access violation, <c>Environment.FailFast</c>, a kill) leaves a
/// <see cref="WorkerCrashedException"/> with the exit code, the signal and the child's last stderr lines.
/// <see cref="Connection.Wait"/> waits on processes (Python's <c>sentinel</c>) together with connections and queues.
/// </summary>
public sealed class WorkerProcess : IWaitable
{
    private static int _counter;
    // The children this process started: process-global by nature, like Python's active_children().
    private static readonly ConcurrentDictionary<WorkerProcess, byte> Children = new();
    private static int _exitHandlerAdded;

    private readonly Delegate? _target;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ChildProcess? _child;
    private ExitStatus? _status;
    private int _started;
    private volatile bool _stoppedByParent;
    private int _pid;
    private bool _daemon;

    /// <summary>Creates a process that will run <paramref name="target"/> once started.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="target"/> is null.</exception>
    public WorkerProcess(Action target)
    {
        ArgumentNullException.ThrowIfNull(target);
        _target = target;
        Name = $"WorkerProcess-{Interlocked.Increment(ref _counter)}";
    }

    /// <summary>
    /// Creates a process that will run the async <paramref name="target"/> once started and await it: the process
    /// ends when the task does (an exception in it gives exit code 1, as a throwing <see cref="Action"/> does).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="target"/> is null.</exception>
    public WorkerProcess(Func<Task> target)
    {
        ArgumentNullException.ThrowIfNull(target);
        _target = target;
        Name = $"WorkerProcess-{Interlocked.Increment(ref _counter)}";
    }

    /// <summary>
    /// Creates a process that will call <paramref name="target"/> with <paramref name="args"/> once started, as Python's
    /// <c>Process(target=work, args=(a, b))</c>: <c>new WorkerProcess(Work, a, b)</c>. The arguments travel with their
    /// runtime types; a target that returns a <see cref="Task"/> is awaited; what it returns is dropped, as in Python.
    /// </summary>
    /// <param name="target">A method or lambda of any number of parameters (a method group with one overload, or a typed lambda).</param>
    /// <param name="args">One value per parameter of <paramref name="target"/>, in order.</param>
    /// <exception cref="ArgumentNullException"><paramref name="target"/> is null.</exception>
    /// <exception cref="ArgumentException">The arguments do not fit the target's parameters (their number, or one's type).</exception>
    public WorkerProcess(Delegate target, params object?[] args)
    {
        ArgumentNullException.ThrowIfNull(target);
        args ??= [null];
        var parameters = target.Method.GetParameters();
        var signature = $"{target.Method.Name}({string.Join(", ", parameters.Select(p => $"{TravelErrors.Friendly(p.ParameterType)} {p.Name}"))})";
        if (parameters.Length != args.Length)
            throw new ArgumentException($"{signature} takes {parameters.Length} argument(s); {args.Length} were given.", nameof(args));
        for (var i = 0; i < args.Length; i++)
        {
            var type = parameters[i].ParameterType;
            var fits = args[i] is { } value ? type.IsInstanceOfType(value) : !type.IsValueType || Nullable.GetUnderlyingType(type) is not null;
            if (!fits)
                throw new ArgumentException($"Argument {i + 1} of {signature} is {(args[i] is null ? "null" : $"a {TravelErrors.Friendly(args[i]!.GetType())}")}, " +
                    $"which does not fit parameter '{parameters[i].Name}' ({TravelErrors.Friendly(type)}).", nameof(args));
        }
        _target = Bind(target, [.. args]);
        Name = $"WorkerProcess-{Interlocked.Increment(ref _counter)}";
    }

    /// <summary>The target and its arguments as one async function the worker runs and awaits.</summary>
    private static Func<Task> Bind(Delegate target, object?[] args) => async () =>
    {
        object? result;
        try
        {
            result = target.DynamicInvoke(args);
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is { } thrown)
        {
            // The target's own exception, as if it had been called directly.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(thrown);
            throw;
        }
        if (result is Task task) await task.ConfigureAwait(false);
    };

    private WorkerProcess(string name, int pid)
    {
        Name = name;
        _pid = pid;
        _started = 1;
    }

    /// <summary>
    /// How many spare workers this process keeps started and idle, so a new pool, a replacement worker or a
    /// <see cref="WorkerProcess"/> starts in about a millisecond rather than a runtime's start (the analogue of
    /// Python's forkserver). Process-wide; 2 by default, or the environment variable MULTIPROCESSING_SPARE_WORKERS
    /// when set; 0 turns spares off (each start then pays the runtime's start). Lowering it ends the idle spares
    /// beyond the new count at once.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or above 64.</exception>
    public static int SpareWorkers
    {
        get => Spawner.SpareTarget;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 64);
            Spawner.SpareTarget = value;
        }
    }

    /// <summary>
    /// What happens to this process when the program that started it exits normally (its <c>Main</c> returns, or it
    /// calls <c>Environment.Exit</c>), with Python's meaning: a non-daemon process (the default, as in Python) is waited
    /// for, so the program's exit waits until it finishes; a daemon process is ended (SIGTERM, then SIGKILL after 5
    /// seconds). When the program dies instead (killed, an unhandled exception, a crash), every child dies with it,
    /// daemon or not, so no worker outlives a dead parent. Set it before <see cref="Start"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set after <see cref="Start"/>.</exception>
    public bool Daemon
    {
        get => _daemon;
        set
        {
            if (Volatile.Read(ref _started) == 1) throw new InvalidOperationException($"'{Name}' was already started; set Daemon before Start(), as in Python.");
            _daemon = value;
        }
    }

    /// <summary>A name for logs and messages; defaults to "WorkerProcess-N".</summary>
    public string Name { get; set; }

    /// <summary>The serializer for captured values; defaults to <see cref="MessagePackObjectSerializer"/>.</summary>
    public ISerializer Serializer { get; init; } = new MessagePackObjectSerializer();

    /// <summary>The operating-system process id, or 0 before <see cref="Start"/>.</summary>
    public int Pid => _pid;

    /// <summary>
    /// Null while running or before start; then 0 on success, 1 when the target threw, the process's
    /// own code when it called <c>Environment.Exit</c>, or minus the signal number when a signal
    /// ended it (-9 after <see cref="Kill"/>, -6 after a stack overflow or <c>FailFast</c>), as in Python.
    /// </summary>
    public int? ExitCode => _status?.PythonCode;

    /// <summary>True from <see cref="Start"/> until the process has exited.</summary>
    public bool IsAlive => _target is null ? Platform.Current.SendSignal(_pid, 0) : Volatile.Read(ref _started) == 1 && !_exited.Task.IsCompleted;

    /// <summary>
    /// After exit: what the target threw (rebuilt as its own type when possible, else a
    /// <see cref="RemoteException"/>), or a <see cref="WorkerCrashedException"/> when the process died
    /// without finishing. Null on success and when this process ended it with <see cref="Terminate"/> or <see cref="Kill"/>.
    /// </summary>
    public Exception? Exception { get; private set; }

    /// <summary>In a worker process, the worker itself; null in a process this library did not start.</summary>
    public static WorkerProcess? Current => WorkerHost.Identity is { } id ? new WorkerProcess(id.Name, Environment.ProcessId) : null;

    /// <summary>In a worker process, the process that started it; null in a process this library did not start.</summary>
    public static WorkerProcess? Parent => WorkerHost.Identity is { } id ? new WorkerProcess("parent", id.ParentPid) : null;

    /// <summary>
    /// Inside a worker: signalled when the parent cancels the call running on this thread (a pool
    /// task whose token was cancelled). <see cref="CancellationToken.None"/> elsewhere.
    /// </summary>
    public static CancellationToken CancellationToken => CallRunner.Token;

    /// <summary>The processes started by this process that have not exited yet.</summary>
    public static IReadOnlyList<WorkerProcess> ActiveChildren() => [.. Children.Keys.Where(p => p.IsAlive)];

    /// <summary>
    /// Starts the process and returns once it runs. Throws <see cref="SerializationException"/>,
    /// naming the captured member and its type, when the target cannot travel.
    /// </summary>
    /// <exception cref="InvalidOperationException">The process was started before.</exception>
    public void Start()
    {
        if (_target is null) throw new InvalidOperationException("This object describes a running process (Current or Parent); it cannot be started.");
        if (Interlocked.Exchange(ref _started, 1) == 1)
            throw new InvalidOperationException($"'{Name}' was already started; a WorkerProcess runs once, as Python's Process. Create a new one to run again.");

        var frames = new FrameBuffer();
        try
        {
            Calls.WriteInit(frames, Name, Serializer, initializer: null);
            Calls.WriteCall(frames, callId: 1, functionId: 0, ShippedFunction.Encode(_target, Serializer), Chunk.Serialize(Serializer, new[] { false }), decidesExitCode: true);
            Calls.WriteSimple(frames, MessageKind.Exit);
        }
        catch
        {
            _started = 0;
            throw;
        }

        try
        {
            _child = Spawner.Spawn(Name);
        }
        catch
        {
            _started = 0;
            throw;
        }
        _pid = _child.Pid;
        Children[this] = 0;
        if (Interlocked.Exchange(ref _exitHandlerAdded, 1) == 0) AppDomain.CurrentDomain.ProcessExit += (_, _) => SettleChildrenAtExit();
        var child = _child;
        // Watch first: if the send below fails, the watcher still sees the end and completes Join.
        new Thread(() => Watch(child)) { IsBackground = true, Name = $"Multiprocessing {Name} watcher" }.Start();
        try
        {
            child.Channel.Send(frames.WrittenSpan);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            child.Kill();
        }
    }

    /// <summary>Waits until the process exits. Returns false if <paramref name="timeout"/> passed first (null waits without limit).</summary>
    /// <exception cref="InvalidOperationException">The process was not started.</exception>
    public bool Join(TimeSpan? timeout = null)
    {
        EnsureStarted();
        return _exited.Task.Wait(timeout ?? Timeout.InfiniteTimeSpan);
    }

    /// <summary>Completes when the process has exited.</summary>
    /// <exception cref="InvalidOperationException">The process was not started.</exception>
    public Task WaitForExitAsync(CancellationToken cancellationToken = default)
    {
        EnsureStarted();
        return _exited.Task.WaitAsync(cancellationToken);
    }

    // For Connection.Wait (Python's sentinel): ready once exited. Current and Parent were not started here: their exit is polled.
    bool IWaitable.IsReady
    {
        get
        {
            if (_target is null) return !IsAlive;
            EnsureStarted();
            return _exited.Task.IsCompleted;
        }
    }

    Task IWaitable.WhenReadyAsync(CancellationToken cancellationToken) =>
        _target is null ? PollExitAsync(cancellationToken) : _exited.Task.WaitAsync(cancellationToken);

    private async Task PollExitAsync(CancellationToken cancellationToken)
    {
        while (IsAlive) await Task.Delay(100, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Asks the process to stop (SIGTERM). Its <see cref="ExitCode"/> becomes -15.</summary>
    public void Terminate() => Stop(Platform.SigTerm);

    /// <summary>Ends the process at once (SIGKILL). Its <see cref="ExitCode"/> becomes -9.</summary>
    public void Kill() => Stop(Platform.SigKill);

    /// <inheritdoc />
    public override string ToString() => $"<WorkerProcess name='{Name}' pid={Pid} {(ExitCode is int c ? "exitcode=" + c : IsAlive ? "started" : "initial")}>";

    /// <summary>
    /// At this process's normal exit, as Python's: daemon children are ended, the others waited for. (A parent that dies
    /// instead takes every child with it, through the parent-death signal each worker sets.)
    /// </summary>
    private static void SettleChildrenAtExit()
    {
        var alive = Children.Keys.Where(p => p.IsAlive).ToList();
        foreach (var child in alive.Where(p => p.Daemon)) child.Terminate();
        foreach (var child in alive)
        {
            if (!child.Daemon) child._exited.Task.Wait();
            else if (!child._exited.Task.Wait(TimeSpan.FromSeconds(5)))
            {
                child.Kill();
                child._exited.Task.Wait(TimeSpan.FromSeconds(5));
            }
        }
    }

    private void Stop(int signal)
    {
        if (_target is null) throw new InvalidOperationException("Only a process started here can be stopped through this object.");
        if (_child is null || _exited.Task.IsCompleted) return;
        _stoppedByParent = true;
        _child.Signal(signal);
    }

    private void EnsureStarted()
    {
        if (Volatile.Read(ref _started) == 0) throw new InvalidOperationException($"'{Name}' has not been started; call Start() first.");
        if (_target is null) throw new InvalidOperationException("Current and Parent describe running processes and cannot be waited on here.");
    }

    private void Watch(ChildProcess child)
    {
        var reported = false;
        try
        {
            while (child.Channel.TryReceive(out var frame))
            {
                var reader = new MessagePackReader(frame);
                switch ((MessageKind)reader.ReadByte())
                {
                    case MessageKind.Result:
                        reported = true;
                        break;
                    case MessageKind.Error:
                        reader.ReadInt64();
                        reader.ReadInt64();
                        Exception = ExceptionShipper.Read(ref reader);
                        reported = true;
                        break;
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or MessagePackSerializationException)
        {
            // A corrupt channel; the exit status below tells what happened.
        }
        var status = child.WaitOrKill(TimeSpan.FromSeconds(30));
        _status = status;
        if (!reported && !_stoppedByParent)
            Exception = new WorkerCrashedException($"Worker process '{Name}' (pid {child.Pid}) died before its target finished", child.Pid, status.Code, status.Signal, child.StderrTail());
        child.Dispose();
        Children.TryRemove(this, out _);
        _exited.TrySetResult();
    }
}
