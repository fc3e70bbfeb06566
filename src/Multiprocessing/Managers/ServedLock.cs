using MessagePack;

namespace Multiprocessing;

/// <summary>Serves <see cref="LockProxy"/>: not reentrant, any client may release (Python's manager Lock); a dead holder's lock is released.</summary>
internal sealed class ServedLock : ServedObject
{
    /// <summary>Replies to <see cref="ManagerOp.LockAcquire"/>.</summary>
    public const int NotAcquired = 0, Acquired = 1, AcquiredAbandoned = 2;

    private readonly object _gate = new();
    private bool _held;
    private bool _abandoned; // the last holder's process went away holding it; the next acquirer is told
    private Guid _owner;

    public override ServedKind Kind => ServedKind.Lock;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        switch (op)
        {
            case ManagerOp.LockAcquire:
            {
                var wait = ReadWait(ref args);
                lock (_gate)
                {
                    if (!WaitUntil(_gate, () => !_held, wait))
                    {
                        reply.Write(NotAcquired);
                        break;
                    }
                    _held = true;
                    _owner = session;
                    reply.Write(_abandoned ? AcquiredAbandoned : Acquired);
                    _abandoned = false;
                }
                break;
            }
            case ManagerOp.LockRelease:
                lock (_gate)
                {
                    if (!_held) throw new SynchronizationLockException("The manager's lock was released while not held. Release only after a successful Acquire, once.");
                    _held = false;
                    Monitor.Pulse(_gate);
                }
                break;
            default: throw Unknown(op, Kind);
        }
    }

    public override void SessionEnded(Guid session)
    {
        lock (_gate)
        {
            if (!_held || _owner != session) return;
            _held = false;
            _abandoned = true;
            Monitor.Pulse(_gate);
        }
    }
}
