using System.Diagnostics;
using MessagePack;

namespace Multiprocessing;

/// <summary>Why the pool ended a worker on purpose; decides how the chunk it was running fails.</summary>
internal enum KillReason { None, Timeout, Cancelled, Terminated, Memory }

/// <summary>
/// One worker process of a pool and its queue of chunks in flight. The child runs chunks in the
/// order they were sent, so the head of <see cref="InFlight"/> is the one running; the rest have
/// not started and can be given to another worker if this one dies.
/// </summary>
internal sealed class PoolWorker(ProcessPool pool, int slot, string name)
{
    private readonly HashSet<int> _defined = [];
    private readonly System.Collections.Concurrent.ConcurrentQueue<int> _forgets = new();
    private readonly FrameBuffer _outbox = new();
    private readonly FrameBuffer _controlOutbox = new();
    private readonly Lock _controlLock = new();
    private readonly SemaphoreSlim _dispatchSignal = new(0);
    private int _dispatchRequested;

    public int Slot { get; } = slot;
    public string Name { get; } = name;
    public ChildProcess? Child { get; set; }

    /// <summary>Which call the worker is running, written by the worker itself (see <see cref="WorkerStatus"/>).</summary>
    public WorkerStatus Status { get; } = WorkerStatus.Create();
    public int Pid => Child?.Pid ?? 0;

    /// <summary>Guards sending; taken before the pool's lock, never after it.</summary>
    public Lock SendLock { get; } = new();

    // The fields below are guarded by the pool's lock.
    public Queue<Chunk> InFlight { get; } = new();
    public bool Ready { get; set; }
    public bool Retiring { get; set; }
    public bool ExitSent { get; set; }
    public bool Gone { get; set; }
    public int Assigned { get; set; }
    public KillReason KillReason { get; set; }
    public long LastMemoryCheck { get; set; }

    /// <summary>Starts the process and serves its channel until it exits. Runs on its own thread.</summary>
    /// <param name="initializer">Runs in the worker before its first task.</param>
    /// <param name="serializer">Serializes calls and results.</param>
    /// <param name="replacing">True when this worker replaces one that exited (more may follow soon).</param>
    public void Run(Delegate? initializer, ISerializer serializer, bool replacing)
    {
        ChildProcess child;
        try
        {
            child = Spawner.Spawn(Name, refillAtOnce: replacing);
            if (!pool.Adopt(this, child))
            {
                // The pool was terminated while this worker was starting.
                child.Kill();
                child.Exited.Wait(TimeSpan.FromSeconds(10));
                child.Dispose();
                pool.OnWorkerExited(this, new ExitStatus(null, 9));
                Status.Unlink();
                Status.Dispose();
                return;
            }
            var init = new FrameBuffer();
            Calls.WriteInit(init, Name, serializer, initializer, Status.Name);
            child.Channel.Send(init.WrittenSpan);
        }
        catch (Exception e)
        {
            if (Child is { } started)
            {
                started.Kill();
                started.Dispose();
            }
            Status.Unlink();
            Status.Dispose();
            pool.OnWorkerFailedToStart(this, e);
            return;
        }
        pool.OnWorkerStarted(this);
        new Thread(WriteLoop) { IsBackground = true, Name = $"Multiprocessing {Name} writer" }.Start();

        try
        {
            while (child.Channel.TryReceive(out var frame))
            {
                var reader = new MessagePackReader(frame);
                var kind = (MessageKind)reader.ReadByte();
                switch (kind)
                {
                    case MessageKind.Ready:
                        Status.Unlink(); // both sides have it mapped now
                        pool.OnWorkerReady(this);
                        break;
                    case MessageKind.InitFailed:
                        pool.OnInitializerFailed(this, ExceptionShipper.Read(ref reader));
                        break;
                    case MessageKind.Result:
                    {
                        var callId = reader.ReadInt64();
                        var elapsed = reader.ReadInt64();
                        pool.OnCallDone(this, callId, elapsed, frame[(int)reader.Consumed..], error: null, refill: !child.Channel.HasBufferedFrame);
                        break;
                    }
                    case MessageKind.Error:
                    {
                        var callId = reader.ReadInt64();
                        var elapsed = reader.ReadInt64();
                        pool.OnCallDone(this, callId, elapsed, default, ExceptionShipper.Read(ref reader), refill: !child.Channel.HasBufferedFrame);
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
            pool.Log(e, "Worker {Name} (pid {Pid}): {Error}; killing it", Name, Pid, e.Message);
            child.Kill();
        }
        var status = child.Exited.Wait(TimeSpan.FromSeconds(10)) ? child.Exited.Result : KillAndWait(child);
        StopWriting();
        pool.OnWorkerExited(this, status);
        child.Dispose();
        Status.Unlink();
        Status.Dispose();
    }

    private static ExitStatus KillAndWait(ChildProcess child)
    {
        child.Kill();
        return child.Exited.Wait(TimeSpan.FromSeconds(10)) ? child.Exited.Result : new ExitStatus(null, 9);
    }

    /// <summary>Functions of finished jobs waiting to be dropped by the worker.</summary>
    public bool HasForgets => !_forgets.IsEmpty;

    /// <summary>Lets the worker drop a finished job's function (sent with the next batch).</summary>
    public void Forget(int functionId)
    {
        _forgets.Enqueue(functionId);
        RequestDispatch();
    }

    /// <summary>Writes and sends the given chunks (and an Exit after them when retiring). Caller holds <see cref="SendLock"/>.</summary>
    public void Send(List<Chunk> chunks, bool thenExit)
    {
        var child = Child;
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
            // The worker died; its reader thread sees the end of stream and fails or requeues these chunks.
        }
        finally
        {
            _outbox.Clear();
        }
    }

    /// <summary>Asks the worker to signal the cancellation token of these calls (on the control channel, never blocked behind calls).</summary>
    public void SendCancel(IEnumerable<long> callIds)
    {
        var child = Child;
        if (child is null) return;
        lock (_controlLock)
        {
            foreach (var id in callIds) Calls.WriteCancel(_controlOutbox, id);
            child.SendControl(_controlOutbox.WrittenSpan);
            _controlOutbox.Clear();
        }
    }

    /// <summary>Asks this worker's writer thread to refill it; cheap, and safe on any thread (the reader's included).</summary>
    public void RequestDispatch()
    {
        if (Interlocked.Exchange(ref _dispatchRequested, 1) == 0) _dispatchSignal.Release();
    }

    /// <summary>The writer thread: sends whatever the pool has for this worker whenever asked, until the worker is gone.</summary>
    private void WriteLoop()
    {
        while (true)
        {
            _dispatchSignal.Wait();
            if (Volatile.Read(ref _stopWriting)) return;
            Volatile.Write(ref _dispatchRequested, 0);
            pool.Dispatch(this);
        }
    }

    private bool _stopWriting;

    private void StopWriting()
    {
        Volatile.Write(ref _stopWriting, true);
        _dispatchSignal.Release();
    }
}
