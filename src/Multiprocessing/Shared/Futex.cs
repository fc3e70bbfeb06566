using System.Diagnostics;
using Multiprocessing.Interop;

namespace Multiprocessing;

/// <summary>A point in time a wait must not pass; <see cref="Infinite"/> never passes.</summary>
internal readonly struct Deadline
{
    private readonly long _end;

    private Deadline(long end) => _end = end;

    public static Deadline Infinite => new(long.MaxValue);

    public static Deadline Now => new(Stopwatch.GetTimestamp());

    /// <summary>Checks a caller's timeout: non-negative, or <see cref="Timeout.InfiniteTimeSpan"/>.</summary>
    public static Deadline After(TimeSpan timeout, string parameter = "timeout")
    {
        if (timeout == Timeout.InfiniteTimeSpan) return Infinite;
        if (timeout < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(parameter, timeout, "A timeout must be zero or positive, or Timeout.InfiniteTimeSpan to wait without limit.");
        var ticks = (long)Math.Min(timeout.TotalSeconds * Stopwatch.Frequency, long.MaxValue / 2);
        return new Deadline(Stopwatch.GetTimestamp() + ticks);
    }

    public bool IsInfinite => _end == long.MaxValue;

    /// <summary>Milliseconds left, rounded up and capped at <paramref name="cap"/>; 0 once passed.</summary>
    public int RemainingMilliseconds(int cap)
    {
        if (IsInfinite) return cap;
        var left = _end - Stopwatch.GetTimestamp();
        if (left <= 0) return 0;
        var ms = (left * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency;
        return (int)Math.Min(ms, cap);
    }

    public bool HasPassed => !IsInfinite && Stopwatch.GetTimestamp() >= _end;
}

/// <summary>
/// The futex words the primitives are built from. A word lives in a shared mapping; a waiter sleeps in
/// the kernel only while the word holds the value it last saw, so a change between looking and
/// sleeping is never missed. Waits are cut in slices so that liveness of a lock holder can be checked
/// and so that a missed wake (a waker killed between its store and its wake) costs at most one slice.
/// </summary>
internal static unsafe class Futex
{
    /// <summary>The longest single sleep; a lock waiter checks that the holder still lives this often.</summary>
    public const int SliceMilliseconds = 100;

    /// <summary>SpinWait iterations before sleeping (each spins about twice as long as the previous).</summary>
    public static readonly int SpinIterations = int.TryParse(Environment.GetEnvironmentVariable("MULTIPROCESSING_SPIN"), out var n) ? n : 10;

    /// <summary>
    /// Sleeps while <c>*word == expected</c>, for one slice at most. Returns false when the deadline has passed
    /// (without sleeping); true otherwise (woken, changed, or slice over: the caller looks again).
    /// </summary>
    public static bool WaitSlice(int* word, int expected, Deadline deadline, out bool sliceTimedOut)
    {
        sliceTimedOut = false;
        var ms = deadline.RemainingMilliseconds(SliceMilliseconds);
        if (ms == 0) return false;
        sliceTimedOut = Platform.Current.FutexWait((nint)word, expected, ms) == FutexWaitResult.TimedOut;
        return true;
    }

    public static void Wake(int* word, int count) => Platform.Current.FutexWake((nint)word, count);

    public static void WakeAll(int* word) => Platform.Current.FutexWake((nint)word, int.MaxValue);

    /// <summary>While registered, a cancellation wakes every sleeper on the word (others just look again).</summary>
    public static CancellationTokenRegistration WakeOnCancel(int* word, CancellationToken token) =>
        token.CanBeCanceled ? token.UnsafeRegister(static state => WakeAll((int*)(nint)state!), (nint)word) : default;


    /// <summary>Runs a blocking wait on a thread of its own, so that no thread-pool thread sleeps in the kernel.</summary>
    public static Task<T> OnDedicatedThread<T>(Func<T> wait) =>
        Task.Factory.StartNew(wait, CancellationToken.None, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
}

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
