using MessagePack;

namespace Multiprocessing;

/// <summary>Writes the parent's frames (see <see cref="MessageKind"/>).</summary>
internal static class Calls
{
    /// <summary>The first frame a child receives: how to deserialize, and what to run once before any call.</summary>
    public static void WriteInit(FrameBuffer output, string name, ISerializer serializer, Delegate? initializer, string? statusName = null)
    {
        try
        {
            output.Write(MessageKind.Init, (ref MessagePackWriter w) =>
            {
                w.Write(name);
                w.Write(statusName);
                w.Write(DelegateShipper.TypeName(serializer.GetType()));
                if (initializer is null) w.WriteNil();
                else DelegateShipper.Write(ref w, initializer, serializer);
            });
        }
        catch
        {
            output.AbandonFrame();
            throw;
        }
    }

    /// <summary>
    /// A call of a function over argument tuples (see <see cref="Invoker"/>), both encoded beforehand. The definition
    /// travels unless null (the worker has it under <paramref name="functionId"/>); a non-zero id lets later calls name it.
    /// A lone call (a WorkerProcess target) <paramref name="decidesExitCode"/>, as Python's exitcode 1 on an exception.
    /// </summary>
    public static void WriteCall(FrameBuffer output, long callId, int functionId, byte[]? definition, ReadOnlyMemory<byte> items, bool decidesExitCode = false)
    {
        output.BeginFrame();
        var w = new MessagePackWriter(output);
        w.Write((byte)MessageKind.Call);
        w.Write(callId);
        w.Write(functionId);
        w.Write(decidesExitCode);
        if (definition is null) w.WriteNil();
        else w.WriteRaw(definition);
        w.WriteRaw(items.Span);
        w.Flush();
        output.EndFrame();
    }

    public static void WriteSimple(FrameBuffer output, MessageKind kind) => output.Write(kind, static (ref MessagePackWriter _) => { });

    public static void WriteForget(FrameBuffer output, int functionId) => output.Write(MessageKind.Forget, (ref MessagePackWriter w) => w.Write(functionId));

    public static void WriteCancel(FrameBuffer output, long callId) => output.Write(MessageKind.Cancel, (ref MessagePackWriter w) => w.Write(callId));
}
