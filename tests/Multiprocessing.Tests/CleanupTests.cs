using System.Diagnostics;

namespace Multiprocessing.Tests;

/// <summary>Alone, so that what appears in /dev/shm and /tmp while it runs is its own doing.</summary>
[CollectionDefinition(nameof(CleanupCollection), DisableParallelization = true)]
public sealed class CleanupCollection;

/// <summary>Whatever kills a program, nothing the library made for it stays behind.</summary>
[Collection(nameof(CleanupCollection))]
public class CleanupTests
{
    [Fact]
    public void A_parent_killed_at_random_points_of_pool_start_queue_spill_and_manager_start_leaves_nothing_behind()
    {
        var random = new Random(20261129);
        for (var round = 0; round < 20; round++)
        {
            var before = Snapshot();
            // The "parent" is a worker of this test, so it can be SIGKILLed without killing the test runner.
            var parent = new WorkerProcess(static () =>
            {
                using var pool = new ProcessPool(2);
                pool.Apply(static () => 1);
                using var queue = new ProcessQueue<byte[]>();
                queue.Put(new byte[6 << 20]); // spills past the ring
                queue.Get();
                queue.Put([1, 2, 3]);
                queue.Get();
                var manager = Manager.StartAsync().GetAwaiter().GetResult();
                manager.Dictionary<string, int>()["x"] = 1;
                Thread.Sleep(Timeout.Infinite);
            }) { Name = $"parent-{round}" };
            parent.Start();
            var delay = random.Next(0, 1500);
            Thread.Sleep(delay);
            parent.Kill();
            TestSupport.JoinOrFail(parent);

            var clock = Stopwatch.StartNew();
            string[] left;
            while ((left = NewSince(before)).Length > 0 && clock.Elapsed < TimeSpan.FromSeconds(2)) Thread.Sleep(20);
            Assert.True(left.Length == 0, $"round {round}: parent (pid {parent.Pid}) killed {delay} ms after its start left, 2 s later: {string.Join(", ", left)}");
        }
    }

    [Fact]
    public void A_program_that_exits_without_disposing_a_queue_and_a_pipe_that_spilled_leaves_none_of_their_blocks()
    {
        var before = Snapshot();
        var program = new WorkerProcess(static () =>
        {
            var queue = new ProcessQueue<byte[]>();
            queue.Put(new byte[6 << 20]); // past the ring: a spill segment
            queue.Get();
            queue.Put([1, 2, 3]);
            queue.Get();
            var (left, right) = Pipe.Create<byte[]>();
            left.Send(new byte[24 << 20]);
            right.Receive();
            left.Send([1, 2, 3]);
            right.Receive();
            // Neither is disposed: the program just ends, as the issue's reproduction did.
        });
        program.Start();
        TestSupport.JoinOrFail(program);
        Assert.Null(program.Exception);
        var clock = Stopwatch.StartNew();
        string[] left;
        while ((left = NewSince(before)).Length > 0 && clock.Elapsed < TimeSpan.FromSeconds(2)) Thread.Sleep(20);
        Assert.True(left.Length == 0, $"left 2 s after the program ended: {string.Join(", ", left)}");
    }

    /// <summary>What the library puts in /dev/shm, and what it or a .NET runtime puts in the temporary folder.</summary>
    private static HashSet<string> Snapshot()
    {
        var temp = Path.GetTempPath();
        return
        [
            // What the library names (other programs on the machine may use /dev/shm meanwhile).
            .. Directory.EnumerateFileSystemEntries("/dev/shm", "mp*"),
            .. Directory.EnumerateFileSystemEntries("/dev/shm", "psm_*"),
            .. Directory.EnumerateFileSystemEntries(temp, "multiprocessing-*"),
            .. Directory.EnumerateFileSystemEntries(temp, "clr-debug-pipe-*"),
            .. Directory.EnumerateFileSystemEntries(temp, "dotnet-diagnostic-*"),
        ];
    }

    // This test process's own socket folder appears with its first worker: it lives on, and is not the parent's.
    private static string[] NewSince(HashSet<string> before) =>
        [.. Snapshot().Where(e => !before.Contains(e) && !e.Contains($"multiprocessing-{Environment.ProcessId}-", StringComparison.Ordinal))];
}
