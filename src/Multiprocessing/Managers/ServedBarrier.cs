using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Serves <see cref="BarrierProxy"/> (Python's manager Barrier). A party's arrival is counted once; it then waits (a
/// bounded while per request) for its round to pass. Each round that passes, and each break (an abort, a party giving
/// up, a reset, a waiting party's process going away), has a number: a waiter whose round passed is released with its
/// arrival index; one whose round was broken gets <see cref="BrokenBarrierException"/>.
/// </summary>
internal sealed class ServedBarrier(int parties) : ServedObject
{
    /// <summary>The state of a party's wait in a reply to <see cref="ManagerOp.BarrierWait"/>.</summary>
    public const int Waiting = 0, Passed = 1, BrokenState = 2;

    private readonly object _gate = new();
    private readonly Dictionary<Guid, int> _waitingBySession = [];
    private int _count;
    private long _round;  // rounds that passed
    private long _breaks; // breaks and resets
    private bool _broken;

    public override ServedKind Kind => ServedKind.Barrier;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        switch (op)
        {
            case ManagerOp.BarrierWait:
            {
                // A new arrival sends round -1; a waiting party sends the round and break numbers it arrived in.
                var (round, breaks, wait) = (args.ReadInt64(), args.ReadInt64(), ReadWait(ref args));
                lock (_gate)
                {
                    if (round < 0)
                    {
                        if (_broken) throw Broken();
                        var index = _count++;
                        (round, breaks) = (_round, _breaks);
                        reply.Write(round);
                        reply.Write(breaks);
                        reply.Write(index);
                        if (_count == parties)
                        {
                            _count = 0;
                            _round++;
                            _waitingBySession.Clear();
                            Monitor.PulseAll(_gate);
                            reply.Write(Passed);
                            break;
                        }
                        _waitingBySession[session] = _waitingBySession.GetValueOrDefault(session) + 1;
                    }
                    else
                    {
                        reply.Write(round);
                        reply.Write(breaks);
                        reply.Write(-1);
                    }
                    var (r, b) = (round, breaks);
                    WaitUntil(_gate, () => _round != r || _breaks != b, wait);
                    reply.Write(_round != r ? Passed : _breaks != b ? BrokenState : Waiting);
                }
                break;
            }
            case ManagerOp.BarrierGiveUp:
            {
                var (round, breaks) = (args.ReadInt64(), args.ReadInt64());
                lock (_gate)
                {
                    // Passed in the meantime: the party passed after all. Otherwise it breaks the barrier, as in Python.
                    if (_round != round) { reply.Write(Passed); break; }
                    if (_breaks == breaks) Break();
                    reply.Write(BrokenState);
                }
                break;
            }
            case ManagerOp.BarrierAbort:
                lock (_gate) Break();
                break;
            case ManagerOp.BarrierReset:
                lock (_gate)
                {
                    _broken = false;
                    if (_count > 0) Reopen();
                }
                break;
            case ManagerOp.BarrierState:
                lock (_gate)
                {
                    reply.Write(parties);
                    reply.Write(_count);
                    reply.Write(_broken);
                }
                break;
            default: throw Unknown(op, Kind);
        }
    }

    public override void SessionEnded(Guid session)
    {
        lock (_gate)
        {
            // A party that went away while waiting can never be counted out: the others would wait for ever.
            if (_waitingBySession.ContainsKey(session)) Break();
        }
    }

    private void Break()
    {
        _broken = true;
        Reopen();
    }

    /// <summary>Ends the current round as broken for those in it, and empties the barrier.</summary>
    private void Reopen()
    {
        _count = 0;
        _breaks++;
        _waitingBySession.Clear();
        Monitor.PulseAll(_gate);
    }

    private static BrokenBarrierException Broken() =>
        new("The manager's barrier is broken (a party gave up, was cancelled, aborted it, or went away while waiting). Call Reset() to use it again.");
}
