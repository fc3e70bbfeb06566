using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Multiprocessing.Tests;

/// <summary>
/// The package is the product: these tests pack the library into a folder feed and build fresh consumer apps
/// from that package alone (no project reference), in every way a .NET app is built and shipped, then run them.
/// Alone in their collection, so the builds do not slow the timing-sensitive tests beside them.
/// </summary>
[CollectionDefinition(nameof(PackageCollection), DisableParallelization = true)]
public sealed class PackageCollection : ICollectionFixture<PackedLibrary>;

[Collection(nameof(PackageCollection))]
public sealed class PackageTests(PackedLibrary package)
{
    private static readonly string Rid = RuntimeInformation.RuntimeIdentifier;

    public static TheoryData<string> RunnableModes => new()
    {
        "build -o (apphost and dotnet app.dll)",
        "publish, framework-dependent",
        "publish, self-contained, no dotnet on the machine",
        "publish, single-file, self-contained, no dotnet on the machine",
        "publish, single-file, framework-dependent",
        "publish, ReadyToRun",
    };

    [Fact]
    public void A_new_console_app_made_with_dotnet_new_and_dotnet_add_package_runs_with_dotnet_run()
    {
        var app = package.NewFolder("dotnet-run");
        package.Dotnet(app, "new", "console", "--framework", "net10.0", "--name", "FreshApp", "--output", ".");
        package.Dotnet(app, "add", "package", "Multiprocessing", "--version", package.Version);
        File.Copy(Path.Combine(PackedLibrary.Templates, "ConsoleApp", "Program.cs"), Path.Combine(app, "Program.cs"), overwrite: true);
        File.Copy(Path.Combine(PackedLibrary.Templates, "Shared", "Checks.cs"), Path.Combine(app, "Checks.cs"));
        var report = package.RunChecks(app, "dotnet", ["run"], hideDotnet: false);
        Assert.Contains("checks passed", report.Text);
    }

    [Theory]
    [MemberData(nameof(RunnableModes))]
    public void A_consumer_app_starts_workers(string mode)
    {
        var app = package.NewConsumer("ConsoleApp", mode);
        var output = Path.Combine(app, "out");
        string[] publish = mode switch
        {
            "build -o (apphost and dotnet app.dll)" => ["build", "-c", "Release", "-o", output],
            "publish, framework-dependent" => ["publish", "-c", "Release", "-o", output],
            "publish, self-contained, no dotnet on the machine" => ["publish", "-c", "Release", "-r", Rid, "--self-contained", "-o", output],
            "publish, single-file, self-contained, no dotnet on the machine" => ["publish", "-c", "Release", "-r", Rid, "--self-contained", "-p:PublishSingleFile=true", "-o", output],
            "publish, single-file, framework-dependent" => ["publish", "-c", "Release", "-r", Rid, "--no-self-contained", "-p:PublishSingleFile=true", "-o", output],
            "publish, ReadyToRun" => ["publish", "-c", "Release", "-r", Rid, "--no-self-contained", "-p:PublishReadyToRun=true", "-o", output],
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
        package.Dotnet(app, [.. publish, $"-p:MultiprocessingVersion={package.Version}"]);

        var executable = Path.Combine(output, "ConsoleApp");
        var selfContained = mode.Contains("self-contained", StringComparison.Ordinal);
        if (mode.Contains("single-file", StringComparison.Ordinal))
            Assert.DoesNotContain(Directory.EnumerateFiles(output), f => f.EndsWith(".dll", StringComparison.Ordinal));

        var report = package.RunChecks(app, executable, [], hideDotnet: selfContained || mode.Contains("single-file", StringComparison.Ordinal));
        // Workers are the application itself started again: no dotnet host is involved where there is none.
        Assert.Equal(executable, report.WorkerExecutable);
        // The package's precompiled image serves the parent and its workers on this RID, in every mode that keeps files.
        var image = mode.Contains("single-file", StringComparison.Ordinal) ? "bundled" : Rid == "linux-x64" ? "ReadyToRun" : "IL";
        Assert.Equal(new[] { image, image }, new[] { report.Value("library image"), report.Value("worker library image") });

        if (mode.StartsWith("build -o", StringComparison.Ordinal))
        {
            report = package.RunChecks(app, "dotnet", [Path.Combine(output, "ConsoleApp.dll")], hideDotnet: false);
            Assert.Equal("dotnet", Path.GetFileName(report.WorkerExecutable));
        }
    }

    [Theory]
    [InlineData("-p:PublishAot=true", "MULTIPROCESSING001", "Native AOT")]
    [InlineData("-p:PublishTrimmed=true", "MULTIPROCESSING002", "trimmed")]
    [InlineData("-p:StartupHookSupport=false", "MULTIPROCESSING003", "startup hook")]
    public void A_publish_mode_that_cannot_start_workers_stops_with_a_message_that_names_it_and_the_fix(string property, string code, string named)
    {
        var app = package.NewConsumer("ConsoleApp", code);
        var (exitCode, output) = package.TryDotnet(app, "publish", "-c", "Release", "-r", Rid, "--self-contained", property, $"-p:MultiprocessingVersion={package.Version}");
        Assert.NotEqual(0, exitCode);
        Assert.Contains($"error {code}: ", output);
        Assert.Contains(named, output);
        Assert.Contains("Remove ", output);
    }

    [Fact]
    public void The_cluster_package_alone_runs_a_ClusterPool_over_a_node_of_the_consumer_app()
    {
        // A fresh app that names only Multiprocessing.Orleans: the core comes with it, Orleans too; no Orleans SDK of its own.
        var app = package.NewConsumer("ClusterApp", "run");
        var (exitCode, output) = package.TryDotnet(app, "run", $"-p:MultiprocessingVersion={package.Version}");
        Assert.True(exitCode == 0, $"dotnet run of the cluster consumer exited with {exitCode}:\n{output}");
        Assert.Contains("cluster: 1 node, 2 slots, 2 worker processes, FormatException rebuilt", output);
        Assert.Contains("cluster checks passed", output);
        using var nupkg = System.IO.Compression.ZipFile.OpenRead(Path.Combine(Path.GetDirectoryName(package.Nupkg)!, $"Multiprocessing.Orleans.{package.Version}.nupkg"));
        var nuspec = new StreamReader(nupkg.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open()).ReadToEnd();
        Assert.Contains($"<dependency id=\"Multiprocessing\" version=\"[{package.Version}]\"", nuspec);
        Assert.Contains("lib/net10.0/Multiprocessing.Orleans.xml", nupkg.Entries.Select(e => e.FullName));
    }

    [Fact]
    public void The_package_carries_docs_symbols_readme_license_and_its_build_checks()
    {
        using var nupkg = System.IO.Compression.ZipFile.OpenRead(package.Nupkg);
        var entries = nupkg.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("lib/net10.0/Multiprocessing.dll", entries);
        Assert.Contains("lib/net10.0/Multiprocessing.xml", entries);
        Assert.Contains("buildTransitive/Multiprocessing.targets", entries);
        Assert.Contains("README.md", entries);
        // One package: no worker host or other executable travels beside the library; its only other image is the
        // library itself precompiled (ReadyToRun) for linux-x64.
        Assert.Equal(new[] { "lib/net10.0/Multiprocessing.dll", "runtimes/linux-x64/lib/net10.0/Multiprocessing.dll" }, entries.Where(e => e.EndsWith(".dll", StringComparison.Ordinal)).Order());
        using (var image = new MemoryStream())
        {
            using (var stream = nupkg.GetEntry("runtimes/linux-x64/lib/net10.0/Multiprocessing.dll")!.Open()) stream.CopyTo(image);
            image.Position = 0;
            using var pe = new System.Reflection.PortableExecutable.PEReader(image);
            Assert.True(pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size > 0, "the linux-x64 image is not ReadyToRun code");
        }
        using var nuspec = new StreamReader(nupkg.GetEntry("Multiprocessing.nuspec")!.Open());
        var metadata = nuspec.ReadToEnd();
        Assert.Contains("<license type=\"expression\">MIT</license>", metadata);
        Assert.Contains("<readme>README.md</readme>", metadata);
        Assert.Contains($"<version>{package.Version}</version>", metadata);
        Assert.True(File.Exists(Path.ChangeExtension(package.Nupkg, ".snupkg")), "no symbols package beside the package");
    }

    [Fact]
    public void An_xunit_test_project_starts_workers_from_its_test_host()
    {
        var app = package.NewConsumer("XunitApp", "xunit");
        var report = package.RunChecks(app, "dotnet", ["test", $"-p:MultiprocessingVersion={package.Version}"], hideDotnet: false);
        Assert.Contains("checks passed", report.Text);
    }

    [Fact]
    public async Task An_aspnet_core_minimal_api_starts_workers_in_a_request()
    {
        var app = package.NewConsumer("WebApp", "aspnet");
        var output = Path.Combine(app, "out");
        package.Dotnet(app, "build", "-c", "Release", "-o", output, $"-p:MultiprocessingVersion={package.Version}");
        var port = FreePort();
        var reportFile = Path.Combine(app, "report.txt");
        using var server = package.Start(app, Path.Combine(output, "WebApp"), ["--urls", $"http://127.0.0.1:{port}"], reportFile, hideDotnet: false);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        string? body = null;
        var clock = Stopwatch.StartNew();
        while (body is null && clock.Elapsed < TimeSpan.FromSeconds(60) && !server.HasExited)
        {
            try { body = await http.GetStringAsync($"http://127.0.0.1:{port}/check"); }
            catch (HttpRequestException) { await Task.Delay(200); }
        }
        TestSupport.SigTerm(server.Id);
        Assert.True(server.WaitForExit(TimeSpan.FromSeconds(30)), "the web app did not stop on SIGTERM");
        Assert.True(body is not null, $"GET /check never answered.\n{package.Log(app)}");
        Assert.Contains("checks passed", body);
        PackedLibrary.AssertNothingLeftInSharedMemory(new ConsumerReport(body));
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>What a consumer app reported: its pid, the shared-memory blocks it made, where its workers ran from.</summary>
public sealed record ConsumerReport(string Text)
{
    private IEnumerable<string> Values(string key) =>
        Text.Split('\n').Where(l => l.StartsWith(key + ": ", StringComparison.Ordinal)).Select(l => l[(key.Length + 2)..].Trim());

    public int Pid => int.Parse(Values("pid").Single(), System.Globalization.CultureInfo.InvariantCulture);
    public IReadOnlyList<string> Blocks => [.. Values("shm")];
    public string WorkerExecutable => Values("worker executable").Single();
    public string Value(string key) => Values(key).Single();
}

/// <summary>The library packed once per test run into a folder feed, with a unique version so no cache serves an older build.</summary>
public sealed class PackedLibrary : IDisposable
{
    private static readonly TimeSpan CommandLimit = TimeSpan.FromMinutes(6);

    /// <summary>Where the consumer templates are: copied next to the test assembly.</summary>
    public static string Templates => Path.Combine(AppContext.BaseDirectory, "Consumers");

    public string Root { get; } = Directory.CreateTempSubdirectory("mp-package-").FullName;
    public string Version { get; }
    public string Nupkg { get; }
    private string Feed => Path.Combine(Root, "feed");

    public PackedLibrary()
    {
        // Both packages, at one version: the core and the cluster pool (which depends on the core's exact version).
        var suffix = $"-p:VersionSuffix=test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        foreach (var name in new[] { "Multiprocessing", "Multiprocessing.Orleans" })
        {
            var project = Path.Combine(RepositoryRoot(), "src", name, name + ".csproj");
            // Its own artifacts folder: packing must not touch the build the tests run from.
            Dotnet(Root, "pack", project, "-c", "Release", "-o", Feed, "--artifacts-path", Path.Combine(Root, "artifacts"), suffix);
        }
        Nupkg = Directory.EnumerateFiles(Feed, "Multiprocessing.*.nupkg").Single(f => !Path.GetFileName(f).StartsWith("Multiprocessing.Orleans.", StringComparison.Ordinal));
        Version = Path.GetFileNameWithoutExtension(Nupkg)["Multiprocessing.".Length..];
        // No <clear/>: the machine's own sources still serve the package's dependencies.
        File.WriteAllText(Path.Combine(Root, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="multiprocessing-under-test" value="{Feed}" />
              </packageSources>
            </configuration>
            """);
    }

    public string NewFolder(string name)
    {
        var folder = Path.Combine(Root, new string([.. name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')]));
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>A copy of a consumer template with the shared checks, in a folder of its own.</summary>
    public string NewConsumer(string template, string mode)
    {
        var folder = NewFolder(template + "-" + mode);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Templates, template)))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        File.Copy(Path.Combine(Templates, "Shared", "Checks.cs"), Path.Combine(folder, "Checks.cs"));
        return folder;
    }

    public void Dotnet(string folder, params string[] arguments)
    {
        var (exitCode, output) = TryDotnet(folder, arguments);
        Assert.True(exitCode == 0, $"dotnet {string.Join(' ', arguments)} failed with {exitCode}:\n{output}");
    }

    public (int ExitCode, string Output) TryDotnet(string folder, params string[] arguments)
    {
        using var process = Start(folder, "dotnet", arguments, reportFile: null, hideDotnet: false);
        var exitCode = WaitOrKill(process, $"dotnet {string.Join(' ', arguments)}");
        return (exitCode, Log(folder));
    }

    /// <summary>Runs a consumer to completion and returns its report, after checking that it left nothing in /dev/shm.</summary>
    public ConsumerReport RunChecks(string folder, string file, string[] arguments, bool hideDotnet)
    {
        var reportFile = Path.Combine(folder, "report.txt");
        File.Delete(reportFile);
        using var process = Start(folder, file, arguments, reportFile, hideDotnet);
        var exitCode = WaitOrKill(process, $"{file} {string.Join(' ', arguments)}");
        Assert.True(exitCode == 0 && File.Exists(reportFile), $"{file} {string.Join(' ', arguments)} exited with {exitCode}:\n{Log(folder)}");
        var report = new ConsumerReport(File.ReadAllText(reportFile));
        Assert.Contains("checks passed", report.Text);
        AssertNothingLeftInSharedMemory(report);
        return report;
    }

    public static void AssertNothingLeftInSharedMemory(ConsumerReport report)
    {
        Assert.Equal(2, report.Blocks.Count);
        string[] Left() => [.. Directory.EnumerateFiles("/dev/shm").Select(Path.GetFileName).OfType<string>()
            .Where(f => report.Blocks.Contains(f) || f.Contains($"_{report.Pid}_", StringComparison.Ordinal))];
        // The resource tracker sweeps what the app did not dispose once the app is gone.
        TestSupport.Eventually(() => Left().Length == 0, TimeSpan.FromSeconds(5));
        Assert.Empty(Left());
    }

    /// <summary>
    /// Starts a command with its output going to a log file in <paramref name="folder"/> (not a pipe: build
    /// servers that outlive the command would hold a pipe open). With <paramref name="hideDotnet"/>, the
    /// command sees no dotnet: an empty PATH and no DOTNET_ROOT, as on a machine without the SDK.
    /// </summary>
    public Process Start(string folder, string file, string[] arguments, string? reportFile, bool hideDotnet)
    {
        var info = new ProcessStartInfo("/bin/sh") { WorkingDirectory = folder, RedirectStandardInput = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec \"$0\" \"$@\" >>log.txt 2>&1");
        info.ArgumentList.Add(file);
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(key);
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        if (reportFile is not null) info.Environment["CONSUMER_REPORT"] = reportFile;
        if (hideDotnet)
        {
            info.Environment["PATH"] = Path.Combine(Root, "empty-path");
            Directory.CreateDirectory(info.Environment["PATH"]!);
            foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("DOTNET_ROOT", StringComparison.Ordinal) || k == "DOTNET_HOST_PATH").ToList())
                info.Environment.Remove(key);
        }
        File.AppendAllText(Path.Combine(folder, "log.txt"), $"$ {file} {string.Join(' ', arguments)}\n");
        var process = Process.Start(info)!;
        process.StandardInput.Close();
        return process;
    }

    public string Log(string folder) => File.Exists(Path.Combine(folder, "log.txt")) ? File.ReadAllText(Path.Combine(folder, "log.txt")) : "";

    private static int WaitOrKill(Process process, string what)
    {
        if (process.WaitForExit(CommandLimit)) return process.ExitCode;
        process.Kill(entireProcessTree: true);
        Assert.Fail($"{what} did not finish within {CommandLimit.TotalMinutes} minutes.");
        return -1;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Multiprocessing.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"No Multiprocessing.slnx above {AppContext.BaseDirectory}.");
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        // The version is unique to this run: drop it from the machine's package cache too.
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        try { Directory.Delete(Path.Combine(cache, "multiprocessing", Version), recursive: true); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
