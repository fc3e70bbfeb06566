using MessagePack;

namespace Multiprocessing;

/// <summary>Serves <see cref="QueueProxy{T}"/>: first in, first out, optionally bounded.</summary>
internal sealed class ServedQueue(int maxSize) : ServedObject
{
    private readonly Queue<byte[]> _items = new();

    public override ServedKind Kind => ServedKind.Queue;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        switch (op)
        {
            case ManagerOp.QueuePut:
            {
                var item = ReadBlob(ref args);
                var wait = ReadWait(ref args);
                lock (_items)
                {
                    if (!WaitUntil(() => maxSize <= 0 || _items.Count < maxSize, wait)) { reply.Write(false); break; }
                    _items.Enqueue(item);
                    Monitor.PulseAll(_items);
                    reply.Write(true);
                }
                break;
            }
            case ManagerOp.QueueGet:
            {
                var wait = ReadWait(ref args);
                lock (_items)
                {
                    if (!WaitUntil(() => _items.Count > 0, wait)) { reply.Write(false); break; }
                    reply.Write(true);
                    reply.Write(_items.Dequeue());
                    Monitor.PulseAll(_items);
                }
                break;
            }
            case ManagerOp.QueueCount:
                lock (_items) reply.Write(_items.Count);
                break;
            default: throw Unknown(op, Kind);
        }
    }

    private bool WaitUntil(Func<bool> condition, int milliseconds)
    {
        var deadline = Environment.TickCount64 + milliseconds;
        while (!condition())
        {
            var left = deadline - Environment.TickCount64;
            if (left <= 0) return false;
            Monitor.Wait(_items, (int)left);
        }
        return true;
    }
}
