using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Serves <see cref="QueueProxy{T}"/>: first in, first out, optionally bounded; when <paramref name="joinable"/>, also
/// <see cref="JoinableQueueProxy{T}"/>'s count of items put and not yet marked done.
/// </summary>
internal sealed class ServedQueue(int maxSize, bool joinable = false) : ServedObject
{
    private readonly Queue<byte[]> _items = new();
    private int _unfinished;

    public override ServedKind Kind => joinable ? ServedKind.JoinableQueue : ServedKind.Queue;

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
                    if (joinable) _unfinished++;
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
            case ManagerOp.QueueTaskDone when joinable:
                lock (_items)
                {
                    if (_unfinished == 0)
                        throw new InvalidOperationException("TaskDone() was called more times than items were put on the manager's joinable queue: call it once per item taken.");
                    if (--_unfinished == 0) Monitor.PulseAll(_items);
                }
                break;
            case ManagerOp.QueueJoin when joinable:
            {
                var wait = ReadWait(ref args);
                lock (_items) reply.Write(WaitUntil(() => _unfinished == 0, wait));
                break;
            }
            case ManagerOp.QueueUnfinished when joinable:
                lock (_items) reply.Write(_unfinished);
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
