using System.Collections.Concurrent;
using MessagePack;

namespace Multiprocessing.Tests.Lanes;

/// <summary>What an in-memory lane does when a call reaches it, decided by the test.</summary>
public enum LaneFault
{
    /// <summary>Runs the call.</summary>
    None,

    /// <summary>Dies after taking the call and before its code begins (as a worker that crashes while reading arguments).</summary>
    DieBeforeUserCode,
}

/// <summary>
/// Lanes that run the pool's calls on threads of this process, with the real worker-side <see cref="CallRunner"/>: the
/// scheduler's window sizing, requeue order and crash attribution are tested without starting a process.
/// </summary>
internal sealed class InMemoryLanes
{
    private readonly ConcurrentQueue<InMemoryLane> _made = new();

    /// <summary>Decides, per call reaching a lane, whether the lane misbehaves (the default runs every call).</summary>
    public Func<InMemoryLane, long, LaneFault> Fault { get; set; } = (_, _) => LaneFault.None;

    /// <summary>Every lane made so far, in order.</summary>
    public IReadOnlyList<InMemoryLane> Made => [.. _made];

    public ILane Create(string name, ILaneEvents events, bool replacing)
    {
        var lane = new InMemoryLane(this, name, events);
        _made.Enqueue(lane);
        return lane;
    }

    /// <summary>A pool over in-memory lanes.</summary>
    public ProcessPool Pool(ProcessPoolOptions options) => new(options, Create);
}

internal sealed class InMemoryLane : ILane
{
    private static int _nextPid = 1_000_000;

    private readonly InMemoryLanes _owner;
    private readonly ILaneEvents _events;
    private readonly BlockingCollection<byte[]?> _inbox = new();
    private readonly Lock _report = new();
    private readonly WorkerStatus _status = WorkerStatus.Create();
    private readonly CallRunner _runner;
    private readonly HashSet<int> _defined = [];
    private readonly ConcurrentQueue<int> _forgets = new();
    private bool _dead;

    /// <summary>The lane whose thread runs the current call (so a test's function can kill its own lane).</summary>
    [ThreadStatic] public static InMemoryLane? Current;

    public InMemoryLane(InMemoryLanes owner, string name, ILaneEvents events)
    {
        _owner = owner;
        _events = events;
        Name = name;
        Pid = Interlocked.Increment(ref _nextPid);
        _runner = new CallRunner(new MessagePackObjectSerializer(), _status);
        // Both "sides" are this process and keep the mapping; the name is not needed (and a lane whose thread is
        // stuck in a test's function keeps it mapped until the test process ends).
        _status.Unlink();
    }

    public string Name { get; }
    public int Pid { get; }

    /// <summary>Calls this lane ran to the end (their ids, in order).</summary>
    public ConcurrentQueue<long> Ran { get; } = new();

    public void Run()
    {
        Current = this;
        if (!_events.Started())
        {
            Die(new ExitStatus(null, 9));
            return;
        }
        _events.Ready();
        var output = new FrameBuffer();
        foreach (var frame in _inbox.GetConsumingEnumerable())
        {
            if (frame is null)
            {
                lock (_report)
                {
                    if (_dead) return;
                    _dead = true;
                }
                _events.Exited(new ExitStatus(0, null));
                return;
            }
            var reader = new MessagePackReader(frame);
            var kind = (MessageKind)reader.ReadByte();
            if (kind == MessageKind.Forget)
            {
                _runner.Forget(reader.ReadInt32());
                continue;
            }
            var callId = new MessagePackReader(frame.AsMemory(1)).ReadInt64();
            if (_owner.Fault(this, callId) == LaneFault.DieBeforeUserCode)
            {
                _status.Begin(callId);
                Die(new ExitStatus(null, 11));
                return;
            }
            _runner.Run(ref reader, frame, output);
            Ran.Enqueue(callId);
            Answer(output);
            output.Clear();
        }
    }

    /// <summary>Hands the answer frames to the pool, unless the lane died meanwhile (then they are lost, as in a killed process).</summary>
    private void Answer(FrameBuffer output)
    {
        var bytes = output.WrittenSpan.ToArray();
        var frames = new List<ReadOnlyMemory<byte>>();
        for (var at = 0; at < bytes.Length;)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
            frames.Add(bytes.AsMemory(at + 4, length));
            at += 4 + length;
        }
        lock (_report)
        {
            if (_dead) return;
            for (var i = 0; i < frames.Count; i++)
            {
                var reader = new MessagePackReader(frames[i]);
                var kind = (MessageKind)reader.ReadByte();
                var callId = reader.ReadInt64();
                var elapsed = reader.ReadInt64();
                var refill = i == frames.Count - 1 && _inbox.Count == 0;
                if (kind == MessageKind.Result) _events.CallDone(callId, elapsed, frames[i][(int)reader.Consumed..], null, refill);
                else _events.CallDone(callId, elapsed, default, ExceptionShipper.Read(ref reader), refill);
            }
        }
    }

    /// <summary>The lane ends as a killed process would: nothing more is answered, and the pool hears of it once.</summary>
    private void Die(ExitStatus status)
    {
        lock (_report)
        {
            if (_dead) return;
            _dead = true;
        }
        _inbox.CompleteAdding();
        // Reported from elsewhere, later, as a process's exit is (and never from a thread pool that a busy test run may starve).
        new Thread(() => _events.Exited(status)) { IsBackground = true }.Start();
    }

    public void Send(IReadOnlyList<Chunk> chunks, bool thenExit)
    {
        if (_inbox.IsAddingCompleted) return;
        var output = new FrameBuffer();
        while (_forgets.TryDequeue(out var forget))
            if (_defined.Remove(forget)) Calls.WriteForget(output, forget);
        foreach (var chunk in chunks)
        {
            var function = chunk.Job.Function;
            var define = function.Id == 0 || _defined.Add(function.Id);
            Calls.WriteCall(output, chunk.CallId, function.Id, define ? function.Definition : null, chunk.Payload);
        }
        var bytes = output.WrittenSpan.ToArray();
        try
        {
            for (var at = 0; at < bytes.Length;)
            {
                var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
                _inbox.Add(bytes.AsSpan(at + 4, length).ToArray());
                at += 4 + length;
            }
            if (thenExit) _inbox.Add(null);
        }
        catch (InvalidOperationException)
        {
            // Died meanwhile: what was sent is the scheduler's to requeue or fail.
        }
    }

    public bool HasForgets => !_forgets.IsEmpty;

    public void Forget(int functionId) => _forgets.Enqueue(functionId);

    public void Cancel(IReadOnlyCollection<long> callIds)
    {
        foreach (var id in callIds) _runner.Cancel(id);
    }

    public void Kill() => Die(new ExitStatus(null, 9));

    public (long CallId, long Since) Running => _status.Read();

    public bool UserCodeStarted(long callId) => _status.UserCodeStarted(callId);

    public long? MemoryInUse() => null;

    public WorkerCrashedException Crashed(string message, ExitStatus status) => new(message, Pid, status.Code, status.Signal, []);
}
