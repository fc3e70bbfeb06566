using MessagePack;

namespace Multiprocessing;

/// <summary>Serves <see cref="EventProxy"/>: a flag that waiters sleep on until it is set (Python's manager Event).</summary>
internal sealed class ServedEvent : ServedObject
{
    private readonly object _gate = new();
    private bool _set;

    public override ServedKind Kind => ServedKind.Event;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        switch (op)
        {
            case ManagerOp.EventSet:
                lock (_gate)
                {
                    _set = true;
                    Monitor.PulseAll(_gate);
                }
                break;
            case ManagerOp.EventClear:
                lock (_gate) _set = false;
                break;
            case ManagerOp.EventIsSet:
                lock (_gate) reply.Write(_set);
                break;
            case ManagerOp.EventWait:
            {
                var wait = ReadWait(ref args);
                lock (_gate) reply.Write(WaitUntil(_gate, () => _set, wait));
                break;
            }
            default: throw Unknown(op, Kind);
        }
    }
}
