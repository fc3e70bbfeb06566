using System.Collections.Concurrent;
using System.Diagnostics;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Runs the calls a pool sends, one at a time, and answers each with one Result or Error frame. It
/// keeps what lives from call to call: the functions shipped once per job, the running call's
/// cancellation token, and the calls cancelled before they began. It knows nothing of sockets or
/// processes, so any host can run it: the worker process (see <see cref="WorkerHost"/>), or a lane
/// of another engine, or the in-memory lanes of the scheduler's tests.
/// </summary>
/// <param name="serializer">Reads the arguments and writes the results.</param>
/// <param name="status">Where the host publishes which call runs (a crash before the user's code begins is not the call's doing); null when nobody watches.</param>
internal sealed class CallRunner(ISerializer serializer, WorkerStatus? status)
{
    private readonly Dictionary<int, Delegate> _functions = [];
    // The call running now and its token source, reused from call to call until one is cancelled.
    private readonly Lock _runningLock = new();
    private long _runningCall = -1;
    private CancellationTokenSource _runningSource = new();
    // Calls cancelled before they started: answered without being run.
    private readonly ConcurrentDictionary<long, bool> _cancelledEarly = new();

    /// <summary>The cancellation token of the call running on this thread.</summary>
    [ThreadStatic] internal static CancellationToken CurrentToken;

    /// <summary>The same token for an async function's continuations, which run on other threads (set only around async calls: it costs an execution-context change).</summary>
    internal static readonly AsyncLocal<CancellationToken> FlowingToken = new();

    /// <summary>The running call's cancellation token, on its thread or in its async continuations.</summary>
    internal static CancellationToken Token => CurrentToken.CanBeCanceled ? CurrentToken : FlowingToken.Value;

    /// <summary>Drops a finished job's function.</summary>
    public void Forget(int functionId) => _functions.Remove(functionId);

    /// <summary>Signals the call's token if it runs now, or skips it when it arrives. Safe on any thread.</summary>
    public void Cancel(long callId)
    {
        lock (_runningLock)
        {
            if (_runningCall == callId) _runningSource.Cancel();
            else _cancelledEarly[callId] = true;
        }
    }

    /// <summary>
    /// Runs the call whose frame <paramref name="reader"/> is positioned in (just after its kind) and appends its
    /// answer to <paramref name="output"/>. Returns false when the call failed and decides the exit code.
    /// </summary>
    public bool Run(ref MessagePackReader reader, ReadOnlyMemory<byte> frame, FrameBuffer output)
    {
        var callId = reader.ReadInt64();
        var funcId = reader.ReadInt32();
        // A lone call (a WorkerProcess target) decides the exit code, as Python's exitcode 1 on an exception.
        var decidesExitCode = reader.ReadBoolean();
        var started = Stopwatch.GetTimestamp();
        lock (_runningLock)
        {
            if (!_runningSource.TryReset()) _runningSource = new CancellationTokenSource();
            _runningCall = callId;
            CurrentToken = _runningSource.Token;
        }
        try
        {
            // The definition is registered before anything else: the parent counts it as sent even if this call is skipped.
            Delegate target;
            if (reader.TryReadNil()) target = _functions[funcId];
            else
            {
                target = DelegateShipper.Read(ref reader, serializer);
                if (funcId != 0) _functions[funcId] = target;
            }
            if (!_cancelledEarly.IsEmpty && _cancelledEarly.TryRemove(callId, out _)) throw new OperationCanceledException("The task was cancelled before it started.");
            var items = frame[(int)reader.Consumed..];
            output.BeginFrame();
            var header = new MessagePackWriter(output);
            header.Write((byte)MessageKind.Result);
            header.Write(callId);
            header.Flush();
            var elapsedAt = output.Length;
            header = new MessagePackWriter(output);
            header.WriteInt64(0); // patched below: WriteInt64 always takes 9 bytes
            header.Flush();
            status?.Begin(callId);
            Invoker.For(target.GetType()).Run(target, items, output, serializer, status);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(output.Written(elapsedAt + 1, 8), Stopwatch.GetTimestamp() - started);
            output.EndFrame();
            return true;
        }
        catch (Exception e)
        {
            output.AbandonFrame();
            var elapsed = Stopwatch.GetTimestamp() - started;
            output.Write(MessageKind.Error, (ref MessagePackWriter w) =>
            {
                w.Write(callId);
                w.Write(elapsed);
                ExceptionShipper.Write(ref w, e);
            });
            return !decidesExitCode;
        }
        finally
        {
            status?.End();
            lock (_runningLock) _runningCall = -1;
            CurrentToken = default;
        }
    }
}
