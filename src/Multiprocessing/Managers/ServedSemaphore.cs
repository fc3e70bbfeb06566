using MessagePack;

namespace Multiprocessing;

/// <summary>Serves <see cref="SemaphoreProxy"/>: a count that acquirers take and anyone releases (Python's manager Semaphore and BoundedSemaphore).</summary>
internal sealed class ServedSemaphore(int initial, int maximum) : ServedObject
{
    private readonly object _gate = new();
    private int _count = initial;

    public override ServedKind Kind => ServedKind.Semaphore;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        switch (op)
        {
            case ManagerOp.SemaphoreAcquire:
            {
                var wait = ReadWait(ref args);
                lock (_gate)
                {
                    var taken = WaitUntil(_gate, () => _count > 0, wait);
                    if (taken) _count--;
                    reply.Write(taken);
                }
                break;
            }
            case ManagerOp.SemaphoreRelease:
            {
                var releases = args.ReadInt32();
                lock (_gate)
                {
                    if (releases < 1) throw new ArgumentOutOfRangeException(nameof(releases), releases, "Release at least 1.");
                    if (maximum - _count < releases)
                        throw new SemaphoreFullException($"Releasing {releases} would take the manager's semaphore past its maximum of {maximum} (count is {_count}): it was released more often than acquired.");
                    reply.Write(_count);
                    _count += releases;
                    Monitor.PulseAll(_gate);
                }
                break;
            }
            case ManagerOp.SemaphoreCount:
                lock (_gate) reply.Write(_count);
                break;
            default: throw Unknown(op, Kind);
        }
    }
}
