using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using MessagePack;
using Multiprocessing.Interop;

namespace Multiprocessing;

/// <summary>
/// The worker's side, entered from the startup hook (see StartupHook) before the application's Main. The main thread reads calls off
/// the data channel and runs them in order, in place (no hand-off between threads on the hot
/// path), answering in batches while more calls are already buffered. A second, control channel
/// is read by a watcher thread, so a cancellation, or the parent's death, is seen while a call runs.
/// </summary>
internal static class WorkerHost
{
    /// <summary>Set in a worker process: the name and the parent's pid.</summary>
    internal static (string Name, int ParentPid)? Identity { get; private set; }

    // The call running now and its token source, reused from call to call until one is cancelled.
    private static readonly Lock RunningLock = new();
    private static long _runningCall = -1;
    private static CancellationTokenSource _runningSource = new();
    // Calls cancelled before they started: answered without being run.
    private static readonly ConcurrentDictionary<long, bool> CancelledEarly = new();

    // Where a pool worker tells its parent which call it is running (null for a WorkerProcess).
    private static WorkerStatus? _status;

    /// <summary>The cancellation token of the call running on this thread, in a worker.</summary>
    [ThreadStatic] internal static CancellationToken CurrentToken;

    /// <summary>Serves one parent until it says exit or goes away; returns the process's exit code.</summary>
    public static int Run(WorkerConnection connection)
    {
        var (socketPath, token, parentPid) = connection;
        // Die with the parent; if it already died before we got here, go now.
        Platform.Current.SetParentDeathSignal();
        if (Platform.Current.GetParentProcessId() != parentPid) return 1;

        var output = new FrameBuffer();
        var channel = Connect(socketPath, token, role: 0, output);
        var control = Connect(socketPath, token, role: 1, output);

        WarmUp();
        if (!channel.TryReceive(out var initFrame)) return 1;
        var init = new MessagePackReader(initFrame);
        if ((MessageKind)init.ReadByte() != MessageKind.Init) return 1;
        // A spare learns its name only when it is taken.
        Identity = (init.ReadString() ?? "worker", parentPid);
        var statusName = init.ReadString();
        ISerializer serializer;
        try
        {
            if (statusName is not null) _status = WorkerStatus.Attach(statusName);
            serializer = (ISerializer)Activator.CreateInstance(DelegateShipper.ResolveType(init.ReadString()!))!;
            if (!init.TryReadNil()) DelegateShipper.Read(ref init, serializer).DynamicInvoke();
        }
        catch (Exception e)
        {
            var error = e is System.Reflection.TargetInvocationException { InnerException: { } inner } ? inner : e;
            Write(output, MessageKind.InitFailed, (ref MessagePackWriter w) => ExceptionShipper.Write(ref w, error));
            channel.Send(output.WrittenSpan);
            return 3;
        }
        Write(output, MessageKind.Ready, static (ref MessagePackWriter _) => { });
        channel.Send(output.WrittenSpan);
        output.Clear();

        new Thread(() => WatchControl(control)) { IsBackground = true, Name = "Multiprocessing worker control" }.Start();
        return ServeCalls(channel, output, serializer);
    }

    /// <summary>
    /// Runs the path of a first call once on dummy data: ship and rebuild a delegate, serialize its
    /// arguments and results, invoke it. A spare worker does this while it waits to be taken, so the
    /// first real call finds the code compiled (as Python's forkserver preloads modules); a worker
    /// started on demand would compile the same code for its first call anyway.
    /// </summary>
    private static void WarmUp()
    {
        try
        {
            var serializer = new MessagePackObjectSerializer();
            Func<int, int> increment = static x => x + 1;
            var definition = ShippedFunction.Encode(increment, serializer);
            var reader = new MessagePackReader(definition);
            var rebuilt = DelegateShipper.Read(ref reader, serializer);
            var output = new FrameBuffer();
            Invoker.For(rebuilt.GetType()).Run(rebuilt, Chunk.Serialize(serializer, new[] { 1, 2 }), output, serializer);
            _ = serializer.Deserialize<int[]>(output.WrittenSpan.ToArray());
            output.Clear();
            Invoker.For(typeof(Func<bool>)).Run((Func<bool>)(static () => true), Chunk.Serialize(serializer, new[] { false }), output, serializer);
            _ = serializer.Deserialize<bool[]>(output.WrittenSpan.ToArray());
            Write(output, MessageKind.Error, (ref MessagePackWriter w) => ExceptionShipper.Write(ref w, new InvalidOperationException("warm-up")));
        }
        catch (Exception)
        {
            // Only an optimization: the real first call compiles whatever this did not.
        }
    }

    private static MessageChannel Connect(string socketPath, string token, int role, FrameBuffer scratch)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        var channel = new MessageChannel(socket);
        Write(scratch, MessageKind.Hello, (ref MessagePackWriter w) =>
        {
            w.Write(token);
            w.Write(role);
        });
        channel.Send(scratch.WrittenSpan);
        scratch.Clear();
        return channel;
    }

    private static void WatchControl(MessageChannel control)
    {
        try
        {
            while (control.TryReceive(out var frame))
            {
                var r = new MessagePackReader(frame);
                if ((MessageKind)r.ReadByte() != MessageKind.Cancel) continue;
                var id = r.ReadInt64();
                lock (RunningLock)
                {
                    if (_runningCall == id) _runningSource.Cancel();
                    else CancelledEarly[id] = true;
                }
            }
        }
        catch (Exception)
        {
            // A corrupt channel is as good as a dead parent.
        }
        // The parent closed the channel or died: nothing we compute can be delivered.
        Platform.Current.ExitNow(0);
    }

    private static int ServeCalls(MessageChannel channel, FrameBuffer output, ISerializer serializer)
    {
        var functions = new Dictionary<int, Delegate>();
        var exitCode = 0;
        while (true)
        {
            if (output.Length > 0 && (!channel.HasBufferedFrame || output.Length > 256 * 1024))
            {
                channel.Send(output.WrittenSpan);
                output.Clear();
            }
            // The frame stays valid until the next receive, and the call is done by then.
            if (!channel.TryReceive(out var frame)) Platform.Current.ExitNow(0);
            var reader = new MessagePackReader(frame);
            var kind = (MessageKind)reader.ReadByte();
            if (kind == MessageKind.Exit)
            {
                if (output.Length > 0) channel.Send(output.WrittenSpan);
                return exitCode;
            }
            if (kind == MessageKind.Call && !RunCall(ref reader, frame, functions, output, serializer)) exitCode = 1;
            else if (kind == MessageKind.Forget) functions.Remove(reader.ReadInt32());
        }
    }

    /// <summary>Runs one call and appends its answer; false when it failed and decides the exit code.</summary>
    private static bool RunCall(ref MessagePackReader reader, ReadOnlyMemory<byte> frame, Dictionary<int, Delegate> functions, FrameBuffer output, ISerializer serializer)
    {
        var callId = reader.ReadInt64();
        var funcId = reader.ReadInt32();
        // A lone call (a WorkerProcess target) decides the exit code, as Python's exitcode 1 on an exception.
        var decidesExitCode = reader.ReadBoolean();
        var started = Stopwatch.GetTimestamp();
        lock (RunningLock)
        {
            if (!_runningSource.TryReset()) _runningSource = new CancellationTokenSource();
            _runningCall = callId;
            CurrentToken = _runningSource.Token;
        }
        try
        {
            // The definition is registered before anything else: the parent counts it as sent even if this call is skipped.
            Delegate target;
            if (reader.TryReadNil()) target = functions[funcId];
            else
            {
                target = DelegateShipper.Read(ref reader, serializer);
                if (funcId != 0) functions[funcId] = target;
            }
            if (!CancelledEarly.IsEmpty && CancelledEarly.TryRemove(callId, out _)) throw new OperationCanceledException("The task was cancelled before it started.");
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
            _status?.Begin(callId);
            Invoker.For(target.GetType()).Run(target, items, output, serializer, _status);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(output.Written(elapsedAt + 1, 8), Stopwatch.GetTimestamp() - started);
            output.EndFrame();
            return true;
        }
        catch (Exception e)
        {
            output.AbandonFrame();
            var elapsed = Stopwatch.GetTimestamp() - started;
            Write(output, MessageKind.Error, (ref MessagePackWriter w) =>
            {
                w.Write(callId);
                w.Write(elapsed);
                ExceptionShipper.Write(ref w, e);
            });
            return !decidesExitCode;
        }
        finally
        {
            _status?.End();
            lock (RunningLock) _runningCall = -1;
            CurrentToken = default;
        }
    }

    internal delegate void HeaderWriter(ref MessagePackWriter writer);

    /// <summary>Appends one whole frame of the given kind.</summary>
    internal static void Write(FrameBuffer output, MessageKind kind, HeaderWriter fields)
    {
        output.BeginFrame();
        var w = new MessagePackWriter(output);
        w.Write((byte)kind);
        fields(ref w);
        w.Flush();
        output.EndFrame();
    }
}
