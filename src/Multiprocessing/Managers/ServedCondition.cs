using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Serves <see cref="ConditionProxy"/>: a condition variable over its own lock, held by a client process (Python's
/// manager Condition). A wait is a ticket: the first request releases the lock and queues the ticket; later
/// requests with it wait (each a bounded while) until the ticket is notified and the lock is free again, then take
/// the lock. A waiter that gives up withdraws its ticket. A process that goes away releases the lock it held (the
/// next acquirer is told) and withdraws its tickets.
/// </summary>
internal sealed class ServedCondition : ServedObject
{
    /// <summary>Replies to <see cref="ManagerOp.ConditionWait"/>: still waiting; notified but the lock is not free yet; notified and the lock held again.</summary>
    public const int Waiting = 0, NotifiedAwaitingLock = 1, Reacquired = 2, ReacquiredAbandoned = 3;

    private sealed class Ticket(long number, Guid session)
    {
        public long Number { get; } = number;
        public Guid Session { get; } = session;
        public bool Notified { get; set; }
    }

    private readonly object _gate = new();
    private readonly List<Ticket> _waiters = [];
    private bool _held;
    private bool _abandoned;
    private Guid _owner;
    private long _lastTicket;

    public override ServedKind Kind => ServedKind.Condition;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        switch (op)
        {
            case ManagerOp.ConditionAcquire:
            {
                var wait = ReadWait(ref args);
                lock (_gate) reply.Write(TryTake(session, wait) ? Taken(ServedLock.Acquired, ServedLock.AcquiredAbandoned) : ServedLock.NotAcquired);
                break;
            }
            case ManagerOp.ConditionRelease:
                lock (_gate)
                {
                    RequireHolder(session, "release");
                    Free();
                }
                break;
            case ManagerOp.ConditionWait:
            {
                var number = args.ReadInt64();
                var wait = ReadWait(ref args);
                lock (_gate)
                {
                    Ticket ticket;
                    if (number == 0)
                    {
                        RequireHolder(session, "wait");
                        ticket = new Ticket(++_lastTicket, session);
                        _waiters.Add(ticket);
                        Free();
                    }
                    else ticket = _waiters.Find(t => t.Number == number)
                        ?? throw new ManagerProtocolException($"condition wait {number} is not pending (it was withdrawn or already woke)");
                    reply.Write(ticket.Number);
                    var deadline = Environment.TickCount64 + wait;
                    if (!WaitUntil(_gate, () => ticket.Notified, wait)) { reply.Write(Waiting); break; }
                    if (!TryTake(session, (int)Math.Max(0, deadline - Environment.TickCount64))) { reply.Write(NotifiedAwaitingLock); break; }
                    _waiters.Remove(ticket);
                    reply.Write(Taken(Reacquired, ReacquiredAbandoned));
                }
                break;
            }
            case ManagerOp.ConditionWithdraw:
            {
                var number = args.ReadInt64();
                lock (_gate)
                {
                    var ticket = _waiters.Find(t => t.Number == number);
                    if (ticket is not null) _waiters.Remove(ticket);
                    reply.Write(ticket?.Notified ?? false);
                }
                break;
            }
            case ManagerOp.ConditionNotify:
            {
                var count = args.ReadInt32();
                lock (_gate)
                {
                    RequireHolder(session, "notify");
                    var woken = 0;
                    foreach (var ticket in _waiters)
                    {
                        if (woken == count) break;
                        if (ticket.Notified) continue;
                        ticket.Notified = true;
                        woken++;
                    }
                    if (woken > 0) Monitor.PulseAll(_gate);
                    reply.Write(woken);
                }
                break;
            }
            default: throw Unknown(op, Kind);
        }
    }

    public override void SessionEnded(Guid session)
    {
        lock (_gate)
        {
            // A notification a dead waiter took is passed on, so a notify(1) is not lost with it.
            var passOn = _waiters.Count(t => t.Session == session && t.Notified);
            _waiters.RemoveAll(t => t.Session == session);
            foreach (var ticket in _waiters)
            {
                if (passOn == 0) break;
                if (!ticket.Notified)
                {
                    ticket.Notified = true;
                    passOn--;
                }
            }
            if (_held && _owner == session)
            {
                _abandoned = true;
                Free();
            }
            else Monitor.PulseAll(_gate);
        }
    }

    private bool TryTake(Guid session, int wait)
    {
        if (!WaitUntil(_gate, () => !_held, wait)) return false;
        _held = true;
        _owner = session;
        return true;
    }

    /// <summary>The answer for a lock just taken: <paramref name="abandoned"/> (once) when its last holder went away holding it.</summary>
    private int Taken(int plain, int abandoned)
    {
        if (!_abandoned) return plain;
        _abandoned = false;
        return abandoned;
    }

    private void Free()
    {
        _held = false;
        Monitor.PulseAll(_gate);
    }

    private void RequireHolder(Guid session, string action)
    {
        if (!_held || _owner != session)
            throw new SynchronizationLockException($"This process tried to {action} the manager's condition without holding its lock. Take it first: using (condition.Acquire()) {{ ... }}.");
    }
}
