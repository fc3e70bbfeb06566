using System.Net.Sockets;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// The worker's side, entered from the startup hook (see StartupHook) before the application's Main. The main thread reads calls off
/// the data channel and runs them in order with a <see cref="CallRunner"/>, in place (no hand-off between threads on the hot
/// path), answering in batches while more calls are already buffered. A second, control channel
/// is read by a watcher thread, so a cancellation, or the parent's death, is seen while a call runs.
/// </summary>
internal static class WorkerHost
{
    /// <summary>Set in a worker process: the name and the parent's pid.</summary>
    internal static (string Name, int ParentPid)? Identity { get; private set; }

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
        CallRunner runner;
        try
        {
            var status = statusName is null ? null : WorkerStatus.Attach(statusName);
            var serializer = (ISerializer)Activator.CreateInstance(DelegateShipper.ResolveType(init.ReadString()!))!;
            if (!init.TryReadNil()) DelegateShipper.Read(ref init, serializer).DynamicInvoke();
            runner = new CallRunner(serializer, status);
        }
        catch (Exception e)
        {
            var error = e is System.Reflection.TargetInvocationException { InnerException: { } inner } ? inner : e;
            output.Write(MessageKind.InitFailed, (ref MessagePackWriter w) => ExceptionShipper.Write(ref w, error));
            channel.Send(output.WrittenSpan);
            return 3;
        }
        output.Write(MessageKind.Ready, static (ref MessagePackWriter _) => { });
        channel.Send(output.WrittenSpan);
        output.Clear();

        new Thread(() => WatchControl(control, runner)) { IsBackground = true, Name = "Multiprocessing worker control" }.Start();
        return ServeCalls(channel, output, runner);
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
            output.Write(MessageKind.Error, (ref MessagePackWriter w) => ExceptionShipper.Write(ref w, new InvalidOperationException("warm-up")));
        }
        catch (Exception)
        {
            // Only an optimization: the real first call compiles whatever this did not.
        }
    }

    private static FrameChannel Connect(string socketPath, string token, int role, FrameBuffer scratch)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        var channel = new FrameChannel(socket);
        scratch.Write(MessageKind.Hello, (ref MessagePackWriter w) =>
        {
            w.Write(token);
            w.Write(role);
        });
        channel.Send(scratch.WrittenSpan);
        scratch.Clear();
        return channel;
    }

    private static void WatchControl(FrameChannel control, CallRunner runner)
    {
        try
        {
            while (control.TryReceive(out var frame))
            {
                var r = new MessagePackReader(frame);
                if ((MessageKind)r.ReadByte() != MessageKind.Cancel) continue;
                runner.Cancel(r.ReadInt64());
            }
        }
        catch (Exception)
        {
            // A corrupt channel is as good as a dead parent.
        }
        // The parent closed the channel or died: nothing we compute can be delivered.
        Platform.Current.ExitNow(0);
    }

    private static int ServeCalls(FrameChannel channel, FrameBuffer output, CallRunner runner)
    {
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
            if (kind == MessageKind.Call && !runner.Run(ref reader, frame, output)) exitCode = 1;
            else if (kind == MessageKind.Forget) runner.Forget(reader.ReadInt32());
        }
    }
}
