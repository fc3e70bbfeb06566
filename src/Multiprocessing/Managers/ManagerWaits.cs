namespace Multiprocessing;

/// <summary>
/// How a proxy waits for something that happens in the manager: a request waits there at most a little while
/// (<see cref="ServedObject.MaxWaitMilliseconds"/>, or 250 ms for async waits so cancellation is seen promptly),
/// and the proxy asks again until the deadline.
/// </summary>
internal static class ManagerWaits
{
    /// <summary>Asks <paramref name="tryOnce"/> (given how long the manager may wait) until it succeeds or <paramref name="timeout"/> passes.</summary>
    public static bool Until(Func<int, bool> tryOnce, TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            while (!tryOnce(ServedObject.MaxWaitMilliseconds)) { }
            return true;
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            var left = deadline - Environment.TickCount64;
            if (tryOnce((int)Math.Clamp(left, 0, ServedObject.MaxWaitMilliseconds))) return true;
            if (left <= 0) return false;
        }
    }

    /// <summary>As <see cref="Until"/>, each request on a thread-pool thread (the caller's thread is free), checking <paramref name="cancellationToken"/> between them.</summary>
    public static async ValueTask<bool> UntilAsync(Func<int, bool> tryOnce, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var infinite = timeout == Timeout.InfiniteTimeSpan;
        if (!infinite) ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        var deadline = infinite ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var left = deadline - Environment.TickCount64;
            if (await Task.Run(() => tryOnce((int)Math.Clamp(left, 0, 250)), cancellationToken).ConfigureAwait(false)) return true;
            if (left <= 0) return false;
        }
    }
}
