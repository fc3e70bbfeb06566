using System.Diagnostics;

namespace Multiprocessing;

/// <summary>
/// A lock word: 0 when free, else the holder's process id, with <see cref="Waiters"/> set when someone may sleep on it.
/// The pid lets a waiter find a holder that died (no robust futexes: .NET threads belong to glibc's robust list).
/// </summary>
internal static unsafe class LockWord
{
    public const int Waiters = unchecked((int)0x80000000);
    public const int PidMask = 0x3FFFFFFF;

    public enum Outcome { Acquired, Abandoned, TimedOut }

    public static readonly int Me = Environment.ProcessId;

    public static bool TryAcquire(int* word) => Interlocked.CompareExchange(ref *word, Me, 0) == 0;

    public static int Holder(int* word) => Volatile.Read(ref *word) & PidMask;

    /// <summary>Takes the lock; a holder found dead is replaced (<see cref="Outcome.Abandoned"/>, its pid in <paramref name="deadHolder"/>).</summary>
    public static Outcome Acquire(int* word, Deadline deadline, CancellationToken token, out int deadHolder)
    {
        deadHolder = 0;
        if (TryAcquire(word)) return Outcome.Acquired;
        // Spin briefly first: a hand-off between processes on other cores often completes within it.
        var spinner = new SpinWait();
        while (spinner.Count < Futex.SpinIterations)
        {
            spinner.SpinOnce(sleep1Threshold: -1);
            if (Volatile.Read(ref *word) == 0 && TryAcquire(word)) return Outcome.Acquired;
        }

        using var cancel = Futex.WakeOnCancel(word, token);
        var checkHolder = true;
        while (true)
        {
            token.ThrowIfCancellationRequested();
            var seen = Volatile.Read(ref *word);
            if (seen == 0)
            {
                // We were contending, so others may be asleep: keep the waiters bit so that our release wakes one.
                if (Interlocked.CompareExchange(ref *word, Me | Waiters, 0) == 0) return Outcome.Acquired;
                continue;
            }
            var holder = seen & PidMask;
            if (checkHolder && holder != Me && !Platform.Current.ProcessExists(holder))
            {
                if (Interlocked.CompareExchange(ref *word, Me | Waiters, seen) == seen)
                {
                    deadHolder = holder;
                    return Outcome.Abandoned;
                }
                continue;
            }
            if ((seen & Waiters) == 0 && Interlocked.CompareExchange(ref *word, seen | Waiters, seen) != seen) continue;
            if (!Futex.WaitSlice(word, seen | Waiters, deadline, out var sliceTimedOut)) return Outcome.TimedOut;
            checkHolder = sliceTimedOut;
        }
    }

    /// <summary>Frees the lock and wakes one sleeper if any; false when it was not locked.</summary>
    public static bool Release(int* word)
    {
        var old = Interlocked.Exchange(ref *word, 0);
        if (old == 0) return false;
        if ((old & Waiters) != 0) Futex.Wake(word, 1);
        return true;
    }
}
