using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Serves <see cref="RLockProxy"/>: reentrant, owned by one thread of one client process (Python's manager RLock):
/// the owner may acquire it again, and only the owner releases it, as often as it acquired. A dead owner's lock is
/// released, and the next acquirer is told.
/// </summary>
internal sealed class ServedRLock : ServedObject
{
    private readonly object _gate = new();
    private (Guid Session, int Thread) _owner;
    private int _count;
    private bool _abandoned;

    public override ServedKind Kind => ServedKind.RLock;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        var caller = (session, args.ReadInt32());
        switch (op)
        {
            case ManagerOp.RLockAcquire:
            {
                var wait = ReadWait(ref args);
                lock (_gate)
                {
                    if (_count > 0 && _owner == caller)
                    {
                        _count++;
                        reply.Write(ServedLock.Acquired);
                        break;
                    }
                    if (!WaitUntil(_gate, () => _count == 0, wait))
                    {
                        reply.Write(ServedLock.NotAcquired);
                        break;
                    }
                    (_owner, _count) = (caller, 1);
                    reply.Write(_abandoned ? ServedLock.AcquiredAbandoned : ServedLock.Acquired);
                    _abandoned = false;
                }
                break;
            }
            case ManagerOp.RLockRelease:
                lock (_gate)
                {
                    if (_count == 0 || _owner != caller)
                        throw new SynchronizationLockException("The manager's RLock is not held by this thread; only the thread that acquired it releases it, once per Acquire (as Python's RLock).");
                    if (--_count == 0) Monitor.PulseAll(_gate);
                }
                break;
            default: throw Unknown(op, Kind);
        }
    }

    public override void SessionEnded(Guid session)
    {
        lock (_gate)
        {
            if (_count == 0 || _owner.Session != session) return;
            _count = 0;
            _abandoned = true;
            Monitor.PulseAll(_gate);
        }
    }
}
