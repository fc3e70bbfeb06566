using System.Diagnostics;

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
