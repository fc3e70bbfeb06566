using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using MessagePack;
using Multiprocessing.Interop;

namespace Multiprocessing;

/// <summary>
/// The worker's side, entered from Multiprocessing.Worker's Main. A reader thread takes frames off
/// the channel (so cancellation and the parent's death are seen while a task runs); the main
/// thread runs calls in order and writes results, batching them while more work is queued.
/// </summary>
internal static class WorkerHost
{
    /// <summary>Set in a worker process: the name and the parent's pid.</summary>
    internal static (string Name, int ParentPid)? Identity { get; private set; }

    private static readonly ConcurrentDictionary<long, CancellationTokenSource> Running = new();

    /// <summary>The cancellation token of the call running on this thread, in a worker.</summary>
    [ThreadStatic] internal static CancellationToken CurrentToken;

    public static int Run(string[] args)
    {
        _ = args;
        if (Environment.GetEnvironmentVariable(ResourceTracker.ModeVariable) == "1") return ResourceTracker.Serve();
        var socketPath = Environment.GetEnvironmentVariable(WorkerEnvironment.Socket);
        var token = Environment.GetEnvironmentVariable(WorkerEnvironment.Token);
        if (socketPath is null || token is null || !int.TryParse(Environment.GetEnvironmentVariable(WorkerEnvironment.ParentPid), out var parentPid))
        {
            Console.Error.WriteLine("Multiprocessing.Worker is started by the Multiprocessing library for its worker processes; it is not run by hand.");
            return 2;
        }
        var name = Environment.GetEnvironmentVariable(WorkerEnvironment.Name) ?? "worker";
        // Die with the parent; if it already died before we got here, go now.
        Platform.Current.SetParentDeathSignal();
        if (Platform.Current.GetParentProcessId() != parentPid) return 1;
        Identity = (name, parentPid);

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        var channel = new MessageChannel(socket);
        var output = new FrameBuffer();
        Write(output, MessageKind.Hello, (ref MessagePackWriter w) => { w.Write(token); w.Write(Environment.ProcessId); });
        channel.Send(output.WrittenSpan);
        output.Clear();

        if (!channel.TryReceive(out var initFrame)) return 1;
        var init = new MessagePackReader(initFrame);
        if ((MessageKind)init.ReadByte() != MessageKind.Init) return 1;
        var serializerType = init.ReadString()!;
        ISerializer serializer;
        try
        {
            serializer = (ISerializer)Activator.CreateInstance(DelegateShipper.ResolveType(serializerType))!;
            if (!init.TryReadNil())
            {
                var initializer = DelegateShipper.Read(ref init, serializer);
                initializer.DynamicInvoke();
            }
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

        var inbox = new WorkQueue();
        var reader = new Thread(() => ReadLoop(channel, inbox)) { IsBackground = true, Name = "Multiprocessing worker reader" };
        reader.Start();
        return ExecuteLoop(channel, inbox, output, serializer);
    }

    private static void ReadLoop(MessageChannel channel, WorkQueue inbox)
    {
        try
        {
            while (channel.TryReceive(out var frame))
            {
                var kind = (MessageKind)frame.Span[0];
                if (kind == MessageKind.Cancel)
                {
                    var r = new MessagePackReader(frame);
                    r.ReadByte();
                    if (Running.TryGetValue(r.ReadInt64(), out var cts)) cts.Cancel();
                    continue;
                }
                inbox.Add(frame.ToArray());
            }
        }
        catch (Exception)
        {
            // A corrupt channel is as good as a dead parent.
        }
        // The parent closed the channel or died: nothing we compute can be delivered.
        Platform.Current.ExitNow(0);
    }

    private static int ExecuteLoop(MessageChannel channel, WorkQueue inbox, FrameBuffer output, ISerializer serializer)
    {
        var functions = new Dictionary<int, Delegate>();
        var exitCode = 0;
        while (true)
        {
            if (output.Length > 0 && (inbox.IsEmpty || output.Length > 256 * 1024))
            {
                channel.Send(output.WrittenSpan);
                output.Clear();
            }
            var frame = inbox.Take();
            var reader = new MessagePackReader(frame);
            var kind = (MessageKind)reader.ReadByte();
            if (kind == MessageKind.Exit)
            {
                if (output.Length > 0) channel.Send(output.WrittenSpan);
                return exitCode;
            }
            if (kind != MessageKind.Call) continue;

            var callId = reader.ReadInt64();
            var funcId = reader.ReadInt32();
            // A lone call (a WorkerProcess target) decides the exit code, as Python's exitcode 1 on an exception.
            var decidesExitCode = reader.ReadBoolean();
            var started = Stopwatch.GetTimestamp();
            using var cts = new CancellationTokenSource();
            Running[callId] = cts;
            CurrentToken = cts.Token;
            try
            {
                Delegate target;
                if (reader.TryReadNil()) target = functions[funcId];
                else
                {
                    target = DelegateShipper.Read(ref reader, serializer);
                    if (funcId != 0) functions[funcId] = target;
                }
                var items = frame.AsMemory((int)reader.Consumed);
                output.BeginFrame();
                var header = new MessagePackWriter(output);
                header.Write((byte)MessageKind.Result);
                header.Write(callId);
                header.Flush();
                var elapsedAt = output.Length;
                header = new MessagePackWriter(output);
                header.WriteInt64(0); // patched below: fixed 9-byte int64
                header.Flush();
                Invoker.For(target.GetType()).Run(target, items, output, serializer);
                PatchElapsed(output, elapsedAt, Stopwatch.GetTimestamp() - started);
                output.EndFrame();
            }
            catch (Exception e)
            {
                output.AbandonFrame();
                if (decidesExitCode) exitCode = 1;
                var elapsed = Stopwatch.GetTimestamp() - started;
                Write(output, MessageKind.Error, (ref MessagePackWriter w) =>
                {
                    w.Write(callId);
                    w.Write(elapsed);
                    ExceptionShipper.Write(ref w, e);
                });
            }
            finally
            {
                CurrentToken = default;
                Running.TryRemove(callId, out _);
            }
        }
    }

    private static void PatchElapsed(FrameBuffer output, int at, long ticks) =>
        // WriteInt64 always emits the 9-byte form (0xd3 + big-endian value), so it can be patched in place.
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(output.Written(at + 1, 8), ticks);

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

    /// <summary>Frames handed from the reader thread to the executing thread; the taker spins briefly before sleeping.</summary>
    private sealed class WorkQueue
    {
        private readonly Queue<byte[]> _items = new();
        private readonly object _lock = new();
        private int _count;
        private bool _sleeping;

        public bool IsEmpty => Volatile.Read(ref _count) == 0;

        public void Add(byte[] item)
        {
            lock (_lock)
            {
                _items.Enqueue(item);
                _count++;
                if (_sleeping) Monitor.Pulse(_lock);
            }
        }

        public byte[] Take()
        {
            var spinner = new SpinWait();
            while (Volatile.Read(ref _count) == 0 && !spinner.NextSpinWillYield) spinner.SpinOnce(-1);
            lock (_lock)
            {
                while (_count == 0)
                {
                    _sleeping = true;
                    Monitor.Wait(_lock);
                    _sleeping = false;
                }
                _count--;
                return _items.Dequeue();
            }
        }
    }
}
