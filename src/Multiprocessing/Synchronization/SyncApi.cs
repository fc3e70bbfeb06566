namespace Multiprocessing;

/// <summary>Shared helpers of the primitives' public surface.</summary>
internal static class SyncApi
{
    public static ValueTask<T> Offload<T>(Func<T> blockingWait, CancellationToken token)
    {
        if (token.IsCancellationRequested) return ValueTask.FromCanceled<T>(token);
        return new ValueTask<T>(Futex.OnDedicatedThread(blockingWait));
    }

    public static SynchronizationLockException NotHeld(string what) =>
        new($"The {what} is not held by this process; release only what you acquired (Python raises the same error on release of an unlocked lock).");
}
