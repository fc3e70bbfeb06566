namespace Multiprocessing.Tests;

/// <summary>Alone, so that no other test starves a worker of CPU: balance is about who is free, and the test counts tasks.</summary>
[CollectionDefinition(nameof(BalanceCollection), DisableParallelization = true)]
public sealed class BalanceCollection;

/// <summary>
/// No worker idles while another holds work it has not started, whatever ran on the pool before.
/// Each test first runs thousands of trivial calls of the same function, which once left a window of
/// hundreds of chunks behind, so the first worker to ask took a whole heavy Map.
/// </summary>
[Collection(nameof(BalanceCollection))]
public class BalanceTests
{
    private static (int Pid, int Ms) SleepThenPid(int ms)
    {
        if (ms > 0) Thread.Sleep(ms);
        return (Environment.ProcessId, ms);
    }

    private static ProcessPool WarmedPool()
    {
        var pool = new ProcessPool(2);
        pool.Map(SleepThenPid, new int[4000], chunkSize: 1); // trivial: learns a window of hundreds
        return pool;
    }

    [Fact]
    public void Long_tasks_after_short_ones_are_spread_four_and_four()
    {
        using var pool = WarmedPool();
        var ran = pool.Map(SleepThenPid, Enumerable.Repeat(500, 8), chunkSize: 1);
        var perWorker = ran.GroupBy(r => r.Pid).Select(g => g.Count()).Order().ToArray();
        Assert.Equal([4, 4], perWorker);
    }

    [Fact]
    public void Mixed_lengths_in_one_map_keep_both_workers_busy()
    {
        using var pool = WarmedPool();
        int[] lengths = [400, 50, 400, 50, 400, 50, 400, 50, 400, 50];
        var ran = pool.Map(SleepThenPid, lengths, chunkSize: 1);
        var busy = ran.GroupBy(r => r.Pid).Select(g => g.Sum(r => r.Ms)).ToArray();
        Assert.Equal(2, busy.Length);
        // Handing out one task at a time to whichever worker is free leaves them apart by at most the longest task (plus one short).
        Assert.InRange(Math.Abs(busy[0] - busy[1]), 0, 450);
    }

    [Fact]
    public void ImapUnordered_with_chunk_size_1_uses_both_workers()
    {
        using var pool = WarmedPool();
        var ran = pool.ImapUnordered(SleepThenPid, Enumerable.Repeat(300, 8), chunkSize: 1).ToList();
        var perWorker = ran.GroupBy(r => r.Pid).Select(g => g.Count()).Order().ToArray();
        Assert.Equal(2, perWorker.Length);
        Assert.True(perWorker[0] >= 3, $"one worker ran {perWorker[0]} of 8 tasks, the other {perWorker[1]}");
    }
}
