
namespace Multiprocessing;

// Producers' liveness: the producer table, and telling a consumer that every producer died.
internal sealed unsafe partial class SharedRing
{
    private void RegisterProducer()
    {
        if (Interlocked.Exchange(ref _registered, 1) != 0) return;
        var me = LockWord.Me;
        var slots = (int*)(_base + OffProducers);
        var free = -1;
        for (var i = 0; i < ProducerSlots; i++)
        {
            var pid = Volatile.Read(ref slots[i]);
            if (pid == me) { free = -2; break; }
            if (pid == 0 && free == -1 && Interlocked.CompareExchange(ref slots[i], me, 0) == 0) { free = i; break; }
        }
        if (free == -1) Volatile.Write(ref I32(OffUntracked), 1); // table full: never declare the producers dead
        if (ForgetProducersOnExit && free >= 0) ProducerExit.Track(this);
    }

    /// <summary>Removes this process from the producer table (it exits normally: it did not die).</summary>
    internal void ForgetThisProducer()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        var slots = (int*)(_base + OffProducers);
        for (var i = 0; i < ProducerSlots; i++)
            Interlocked.CompareExchange(ref slots[i], 0, LockWord.Me);
    }

    /// <summary>When every producer on record is dead (none alive, none untracked), a dead pid; else 0.</summary>
    private int ProducersDead(bool clear)
    {
        if (Volatile.Read(ref I32(OffUntracked)) != 0) return 0;
        var slots = (int*)(_base + OffProducers);
        var dead = 0;
        for (var i = 0; i < ProducerSlots; i++)
        {
            var pid = Volatile.Read(ref slots[i]);
            if (pid == 0) continue;
            if (pid == LockWord.Me || Platform.Current.ProcessExists(pid)) return 0;
            dead = pid;
        }
        if (dead != 0 && clear)
        {
            for (var i = 0; i < ProducerSlots; i++)
            {
                var pid = Volatile.Read(ref slots[i]);
                if (pid != 0 && !Platform.Current.ProcessExists(pid)) Interlocked.CompareExchange(ref slots[i], 0, pid);
            }
        }
        return dead;
    }

    private void ThrowIfProducersDead(bool endOfStream)
    {
        if (HasData) return;
        // A pipe's writer that exited is the end of the stream for good; a queue reports each dead producer once.
        var pid = ProducersDead(clear: !endOfStream);
        if (pid == 0) return;
        if (endOfStream) throw new EndOfStreamException($"The process that was sending on this pipe (pid {pid}) has exited, and everything it sent has been received.");
        throw new ProducerDiedException(
            $"The queue is empty and every process that put into it has died (last seen: pid {pid}) without closing it; nothing more can come unless another process starts putting.", pid);
    }
}
