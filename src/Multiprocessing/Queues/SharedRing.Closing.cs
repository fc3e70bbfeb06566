namespace Multiprocessing;

// Closing either end (Close, CloseReader), and join counting (TaskDone, Join).
internal sealed unsafe partial class SharedRing
{
    public void Close()
    {
        if (_disposed != 0) return;
        Volatile.Write(ref I32(OffClosed), 1);
        if (Volatile.Read(ref I32(OffConsumerWaiters)) > 0) Futex.WakeAll(PutWord);
        if (Volatile.Read(ref I32(OffProducerWaiters)) > 0) Futex.WakeAll(GetWord);
    }

    public void CloseReader()
    {
        if (_disposed != 0) return;
        Volatile.Write(ref I32(OffReaderClosed), 1);
        if (Volatile.Read(ref I32(OffProducerWaiters)) > 0) Futex.WakeAll(GetWord);
    }

    public void TaskDone()
    {
        ThrowIfDisposed();
        var current = Volatile.Read(ref *UnfinishedWord);
        while (true)
        {
            if (current <= 0)
                throw new InvalidOperationException("TaskDone() was called more times than there were items put into the queue (Python raises ValueError here).");
            var seen = Interlocked.CompareExchange(ref *UnfinishedWord, current - 1, current);
            if (seen == current) break;
            current = seen;
        }
        if (current == 1 && Volatile.Read(ref I32(OffJoinWaiters)) > 0) Futex.WakeAll(UnfinishedWord);
    }

    public bool Join(Deadline deadline, CancellationToken token)
    {
        ThrowIfDisposed();
        if (Unfinished == 0) return true;
        using var hold = Keep();
        using var cancel = Futex.WakeOnCancel(UnfinishedWord, token);
        Interlocked.Increment(ref I32(OffJoinWaiters));
        try
        {
            while (true)
            {
                token.ThrowIfCancellationRequested();
                var seen = Volatile.Read(ref *UnfinishedWord);
                if (seen == 0) return true;
                if (!Futex.WaitSlice(UnfinishedWord, seen, deadline, out _)) return false;
            }
        }
        finally
        {
            Interlocked.Decrement(ref I32(OffJoinWaiters));
        }
    }
}
