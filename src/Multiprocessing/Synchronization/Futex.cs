
namespace Multiprocessing;

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
