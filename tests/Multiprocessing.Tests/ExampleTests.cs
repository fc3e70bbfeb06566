using System.Diagnostics;

namespace Multiprocessing.Tests;

/// <summary>Runs every program under examples/ as a user would, so none can rot.</summary>
public class ExampleTests
{
    public static TheoryData<string, string, bool, string> Examples => new()
    {
        { "Tour", "Tour complete.", false, "" },
        // The same program started through its apphost, as a built app is run directly.
        { "Tour", "Tour complete.", true, "" },
        // 24 images of 96x96: small, so the test is quick; the program checks its output against a sequential run.
        { "ImagePipeline", "before/after of image 0", false, "24 96 96 2" },
        // A listener and clients that are separate programs (this one started again), a wait over them, a wrong key refused.
        { "Connections", "Connections complete.", false, "" },
        // Two node processes of itself (Orleans silos on loopback), a ClusterPool over them, one node killed midway:
        // the pool's retries finish the work (the program exits non-zero if any task is lost).
        { "Cluster", "cluster: 24 tasks on 2 nodes, ", false, "--tasks 24 --kill-one" },
        // The same map on a local ProcessPool: the code takes an IProcessPool.
        { "Cluster", "local: 16 tasks on 1 machine, 0 lost", false, "--tasks 16 --local" },
        // A third node process joins midway and takes its share.
        { "Cluster", "cluster: 32 tasks on 3 nodes, 0 retried, 0 lost", false, "--tasks 32 --join-late" },
    };

    [Theory]
    [MemberData(nameof(Examples))]
    public async Task Example_runs_to_completion(string name, string lastWords, bool apphost, string arguments)
    {
        var (code, output) = await ExampleRun.RunAsync(name, arguments, apphost);
        Assert.True(code == 0, $"examples/{name} exited with {code}.\n{output}");
        Assert.Contains(lastWords, output);
    }
}

/// <summary>Starts a program under examples/ (built with the tests: the test project references every example).</summary>
internal static class ExampleRun
{
    /// <summary>The example's built dll, beside this test assembly's configuration and framework.</summary>
    public static string Dll(string name)
    {
        // tests/Multiprocessing.Tests/bin/<Configuration>/<tfm>/ -> repository root
        var outputDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = outputDir.Name;
        var configuration = outputDir.Parent!.Name;
        var root = outputDir.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(root, "examples", name, "bin", configuration, tfm, name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} was not built; the test project references every example so that it is.");
        return dll;
    }

    public static Process Start(string name, string arguments, bool apphost = false, bool redirectStdin = false, string? workingDirectory = null)
    {
        var dll = Dll(name);
        var info = new ProcessStartInfo(apphost ? Path.ChangeExtension(dll, null) : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        if (!apphost) info.ArgumentList.Add(dll);
        foreach (var argument in arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)) info.ArgumentList.Add(argument);
        return Process.Start(info)!;
    }

    /// <summary>Runs the example to its end (at most 3 minutes: then it is killed and the test fails with what it printed).</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string name, string arguments, bool apphost = false)
    {
        var workingDirectory = Directory.CreateTempSubdirectory("mp-example-").FullName;
        using var process = Start(name, arguments, apphost, workingDirectory: workingDirectory);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"examples/{name} {arguments} did not finish within 3 minutes. It printed:\n{await stdout}\n{await stderr}");
        }
        var output = await stdout + await stderr;
        Directory.Delete(workingDirectory, recursive: true);
        return (process.ExitCode, output);
    }
}
