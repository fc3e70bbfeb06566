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
    };

    [Theory]
    [MemberData(nameof(Examples))]
    public async Task Example_runs_to_completion(string name, string lastWords, bool apphost, string arguments)
    {
        // tests/Multiprocessing.Tests/bin/<Configuration>/<tfm>/ -> repository root
        var outputDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = outputDir.Name;
        var configuration = outputDir.Parent!.Name;
        var root = outputDir.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(root, "examples", name, "bin", configuration, tfm, name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} was not built; the test project references every example so that it is.");

        var workingDirectory = Directory.CreateTempSubdirectory("mp-example-").FullName;
        var info = new ProcessStartInfo(apphost ? Path.ChangeExtension(dll, null) : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        if (!apphost) info.ArgumentList.Add(dll);
        foreach (var argument in arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)) info.ArgumentList.Add(argument);
        using var process = Process.Start(info)!;
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
            Assert.Fail($"examples/{name} did not finish within 3 minutes.");
        }
        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"examples/{name} exited with {process.ExitCode}.\n{output}\n{await stderr}");
        Assert.Contains(lastWords, output);
        Directory.Delete(workingDirectory, recursive: true);
    }
}
