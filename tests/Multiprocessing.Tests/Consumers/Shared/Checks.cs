using System.Text;
using Multiprocessing;

/// <summary>
/// What every consumer app runs, built from the packed package only: a Map with a capturing lambda, an
/// ApplyAsync whose worker throws, a SharedArray written by a worker, and one block left undisposed for the
/// resource tracker. The report names the blocks and the pid, so the test can check /dev/shm after exit.
/// </summary>
public static class Checks
{
    public static async Task<string> RunAsync()
    {
        var report = new StringBuilder();
        await using (var pool = new ProcessPool(new ProcessPoolOptions { Processes = 2 }))
        {
            var offset = 1000;
            var mapped = pool.Map((int x) => x + offset, Enumerable.Range(0, 100));
            Require(mapped.SequenceEqual(Enumerable.Range(1000, 100)), "Map with a captured value returned wrong results");
            report.AppendLine("map: ok");

            try
            {
                // A lambda that only throws fits both Func<int> and Func<Task<int>> (as with Task.Run): say which.
                await pool.ApplyAsync(new Func<int>(static () => throw new InvalidOperationException("thrown in the worker")));
                Require(false, "ApplyAsync did not throw the worker's exception");
            }
            catch (InvalidOperationException e) when (e.Message == "thrown in the worker")
            {
                report.AppendLine("apply exception: ok");
            }

            using var squares = SharedArray<int>.Create(16);
            pool.Apply(() =>
            {
                for (var i = 0; i < squares.Length; i++) squares[i] = i * i;
                return 0;
            });
            Require(squares.ToArray().SequenceEqual(Enumerable.Range(0, 16).Select(i => i * i)), "the worker's writes to the SharedArray were not seen");
            report.AppendLine("shared array: ok");
            report.AppendLine($"shm: {squares.Name}");

            // Never disposed: the resource tracker must remove it once this process has exited.
            var leaked = SharedArray<long>.Create(4);
            report.AppendLine($"shm: {leaked.Name}");

            report.AppendLine($"worker executable: {pool.Apply(static () => Environment.ProcessPath)}");
            report.AppendLine($"library image: {LibraryImage()}");
            report.AppendLine($"worker library image: {pool.Apply(static () => LibraryImage())}");
        }
        report.AppendLine($"pid: {Environment.ProcessId}");
        report.AppendLine("checks passed");
        var text = report.ToString();
        if (Environment.GetEnvironmentVariable("CONSUMER_REPORT") is { Length: > 0 } path) File.WriteAllText(path, text);
        return text;
    }

    /// <summary>How the library's code was loaded: precompiled (the package's runtimes/&lt;rid&gt; image), IL only, or bundled in a single file.</summary>
    private static string LibraryImage()
    {
        var path = typeof(ProcessPool).Assembly.Location;
        if (path.Length == 0) return "bundled";
        using var pe = new System.Reflection.PortableExecutable.PEReader(File.OpenRead(path));
        return pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size > 0 ? "ReadyToRun" : "IL";
    }

    private static void Require(bool condition, string failure)
    {
        if (!condition) throw new InvalidOperationException(failure);
    }
}
