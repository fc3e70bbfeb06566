using System.Buffers;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// An object that lives in the manager's process. Built-in kinds hold serialized values as bytes, so
/// the server needs none of the user's types to store or compare them (keys compare by their
/// serialized form); only atomic updates and registered services deserialize, in user code.
/// Each object guards its own state; requests on different objects never wait for each other.
/// </summary>
internal abstract class ServedObject
{
    /// <summary>How long one request may block in the server (a lock or queue wait); clients repeat the wait, so a dead client frees its thread.</summary>
    public const int MaxWaitMilliseconds = 1000;

    public abstract ServedKind Kind { get; }

    /// <summary>Runs one request; the reply's status byte is already written. Throws to reply with an error.</summary>
    public abstract void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session);

    /// <summary>Every connection of a client process closed: it exited or died.</summary>
    public virtual void SessionEnded(Guid session) { }

    protected static byte[] ReadBlob(ref MessagePackReader reader) =>
        reader.ReadBytes() is { } bytes ? bytes.ToArray() : throw new ManagerProtocolException("expected a serialized value, found nil");

    /// <summary>
    /// Waits on <paramref name="gate"/> (whose lock the caller holds) until <paramref name="ready"/> or
    /// <paramref name="milliseconds"/> pass; returns whether it is ready. Whoever makes it ready pulses the gate.
    /// </summary>
    protected static bool WaitUntil(object gate, Func<bool> ready, int milliseconds)
    {
        var deadline = Environment.TickCount64 + milliseconds;
        while (!ready())
        {
            var left = deadline - Environment.TickCount64;
            if (left <= 0 || !Monitor.Wait(gate, (int)left)) return ready();
        }
        return true;
    }

    protected static int ReadWait(ref MessagePackReader reader) => Math.Clamp(reader.ReadInt32(), 0, MaxWaitMilliseconds);

    protected static ManagerProtocolException Unknown(ManagerOp op, ServedKind kind) => new($"operation {op} does not apply to a {kind}");
}
