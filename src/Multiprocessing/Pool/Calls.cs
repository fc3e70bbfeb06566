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
    /// A call of <paramref name="function"/> over <paramref name="items"/> (argument tuples, see
    /// <see cref="Invoker"/>). The definition travels when <paramref name="define"/> is set; a
    /// non-zero <paramref name="functionId"/> lets later calls name it without sending it again.
    /// </summary>
    public static void WriteCall<TItem>(FrameBuffer output, long callId, int functionId, bool define, bool decidesExitCode,
        Delegate function, ISerializer serializer, TItem[] items)
    {
        output.BeginFrame();
        try
        {
            var w = new MessagePackWriter(output);
            w.Write((byte)MessageKind.Call);
            w.Write(callId);
            w.Write(functionId);
            w.Write(decidesExitCode);
            if (define) DelegateShipper.Write(ref w, function, serializer);
            else w.WriteNil();
            w.Flush();
            serializer.Serialize(output, items);
            output.EndFrame();
        }
        catch (Exception e)
        {
            output.AbandonFrame();
            if (e is SerializationException) throw;
            throw new SerializationException($"The arguments of type {typeof(TItem).Name} cannot be serialized to travel to a worker: {e.Message}", e);
        }
    }

    /// <summary>A call whose function definition (or null when the worker has it) and items were encoded beforehand.</summary>
    public static void WriteCall(FrameBuffer output, long callId, int functionId, byte[]? definition, ReadOnlyMemory<byte> items)
    {
        output.BeginFrame();
        var w = new MessagePackWriter(output);
        w.Write((byte)MessageKind.Call);
        w.Write(callId);
        w.Write(functionId);
        w.Write(false);
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
