using MessagePack;

namespace Multiprocessing;

/// <summary>
/// A lane that is one worker process on this machine: it spawns the process, sends it the pool's
/// initializer, writes calls to its data channel and cancellations to its control channel, and reads its
/// answers on the thread the scheduler gave it. The worker writes which call it runs into a
/// <see cref="WorkerStatus"/> this lane reads, so a crash or a timeout is pinned on the right call.
/// </summary>
internal sealed class WorkerLane(string name, ILaneEvents events, Delegate? initializer, ISerializer serializer, bool replacing) : ILane
{
    // Functions this worker holds, and those finished jobs let it drop (sent with the next calls).
    private readonly HashSet<int> _defined = [];
    private readonly System.Collections.Concurrent.ConcurrentQueue<int> _forgets = new();
    private readonly FrameBuffer _outbox = new();
    private readonly FrameBuffer _controlOutbox = new();
    private readonly Lock _controlLock = new();
    // Made when the lane runs, released after the scheduler heard of its end (it reads the status only while the lane is not gone).
    private WorkerStatus? _status;
    private volatile ChildProcess? _child;

    public string Name { get; } = name;
    public int Pid => _child?.Pid ?? 0;

    public void Run()
    {
        ChildProcess child;
        WorkerStatus status;
        try
        {
            _status = status = WorkerStatus.Create();
            child = Spawner.Spawn(Name, refillAtOnce: replacing);
            _child = child;
            if (!events.Started())
            {
                // The pool was terminated while this worker was starting.
                child.Kill();
                child.Exited.Wait(TimeSpan.FromSeconds(10));
                events.Exited(new ExitStatus(null, 9));
                child.Dispose();
                ReleaseStatus();
                return;
            }
            var init = new FrameBuffer();
            Calls.WriteInit(init, Name, serializer, initializer, status.Name);
            child.Channel.Send(init.WrittenSpan);
        }
        catch (Exception e)
        {
            if (_child is { } started)
            {
                started.Kill();
                started.Dispose();
            }
            events.FailedToStart(e);
            ReleaseStatus();
            return;
        }

        try
        {
            while (child.Channel.TryReceive(out var frame))
            {
                var reader = new MessagePackReader(frame);
                var kind = (MessageKind)reader.ReadByte();
                switch (kind)
                {
                    case MessageKind.Ready:
                        status.Unlink(); // both sides have it mapped now
                        events.Ready();
                        break;
                    case MessageKind.InitFailed:
                        events.InitializerFailed(ExceptionShipper.Read(ref reader));
                        break;
                    case MessageKind.Result:
                    {
                        var callId = reader.ReadInt64();
                        var elapsed = reader.ReadInt64();
                        events.CallDone(callId, elapsed, frame[(int)reader.Consumed..], error: null, refill: !child.Channel.HasBufferedFrame);
                        break;
                    }
                    case MessageKind.Error:
                    {
                        var callId = reader.ReadInt64();
                        var elapsed = reader.ReadInt64();
                        events.CallDone(callId, elapsed, default, ExceptionShipper.Read(ref reader), refill: !child.Channel.HasBufferedFrame);
                        break;
                    }
                    default:
                        throw new InvalidDataException($"Unexpected message {kind} from worker {Name}.");
                }
            }
        }
        catch (Exception e)
        {
            // Nothing may escape a reader thread (it would end the parent): a corrupt frame, or a
            // failure while delivering a result, ends this worker and its work is failed or requeued.
            events.Faulted(e);
            child.Kill();
        }
        var exit = child.WaitOrKill(TimeSpan.FromSeconds(10));
        events.Exited(exit);
        child.Dispose();
        ReleaseStatus();
    }

    private void ReleaseStatus()
    {
        if (Interlocked.Exchange(ref _status, null) is not { } status) return;
        status.Unlink();
        status.Dispose();
    }

    public bool HasForgets => !_forgets.IsEmpty;

    public void Forget(int functionId) => _forgets.Enqueue(functionId);

    public void Send(IReadOnlyList<Chunk> chunks, bool thenExit)
    {
        var child = _child;
        if (child is null) return;
        // Forgets go first: their jobs are over, so no call of theirs can follow.
        while (_forgets.TryDequeue(out var forget))
            if (_defined.Remove(forget)) Calls.WriteForget(_outbox, forget);
        foreach (var chunk in chunks)
        {
            var function = chunk.Job.Function;
            var define = function.Id == 0 || _defined.Add(function.Id);
            Calls.WriteCall(_outbox, chunk.CallId, function.Id, define ? function.Definition : null, chunk.Payload);
        }
        if (thenExit) Calls.WriteSimple(_outbox, MessageKind.Exit);
        try
        {
            child.Channel.Send(_outbox.WrittenSpan);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // The worker died; its reader thread sees the end of stream and the scheduler fails or requeues these chunks.
        }
        finally
        {
            _outbox.Clear();
        }
    }

    public void Cancel(IReadOnlyCollection<long> callIds)
    {
        var child = _child;
        if (child is null) return;
        lock (_controlLock)
        {
            foreach (var id in callIds) Calls.WriteCancel(_controlOutbox, id);
            child.SendControl(_controlOutbox.WrittenSpan);
            _controlOutbox.Clear();
        }
    }

    public void Kill() => _child?.Kill();

    public (long CallId, long Since) Running => _status?.Read() ?? default;

    public bool UserCodeStarted(long callId) => _status?.UserCodeStarted(callId) ?? false;

    public long? MemoryInUse() => _child is { } child ? Platform.Current.ResidentMemory(child.Pid) : null;

    public WorkerCrashedException Crashed(string message, ExitStatus status) =>
        new(message, Pid, status.Code, status.Signal, _child?.StderrTail() ?? []);
}
