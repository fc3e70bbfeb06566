using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Multiprocessing.Orleans;

namespace Multiprocessing.Tests;

/// <summary>
/// A cluster of real node processes on loopback: examples/Cluster started as a user would, as the driver (which starts
/// its own nodes) or as a node. The driver's program is the nodes' program, as a cluster requires (the same build).
/// </summary>
public class ClusterProcessTests
{
    [Fact]
    public async Task Without_retries_a_killed_node_process_fails_what_it_held_naming_it_within_15_seconds()
    {
        var (code, output) = await ExampleRun.RunAsync("Cluster", "--tasks 24 --kill-one --no-retries");
        Assert.True(code == 1, $"exit code {code} (1 expected: tasks were lost)\n{output}");
        var failed = Regex.Match(output, @"failed (\d+\.\d) s after the kill: WorkerCrashedException: .*the node (127\.0\.0\.1:\d+@\d+) (stopped answering|could not be reached)");
        Assert.True(failed.Success, output);
        Assert.True(double.Parse(failed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < 15, $"the loss took {failed.Groups[1].Value} s to be seen");
        Assert.Matches(@"cluster: 24 tasks on 2 nodes, 0 retried, [1-9]\d* lost", output);
    }

    [Fact]
    public async Task With_Redis_membership_a_Map_survives_a_killed_node_and_a_node_that_joins_takes_work()
    {
        await using var redis = await RedisServer.StartAsync();
        var (code, output) = await ExampleRun.RunAsync("Cluster", $"--tasks 48 --kill-one --join-late --redis {redis.Address}");
        Assert.True(code == 0, $"exit code {code}\n{output}");
        Assert.True(output.Contains($"membership in Redis at {redis.Address}", StringComparison.Ordinal), output);
        Assert.True(output.Contains("cluster: 48 tasks on 3 nodes", StringComparison.Ordinal), output); // the two started, and the one that joined, all ran tasks
        Assert.True(output.Contains(" 0 lost", StringComparison.Ordinal), output);
    }

    [Fact]
    public async Task A_node_of_another_build_is_refused_with_a_message_that_says_so()
    {
        // A node process of examples/Cluster; this test process is another application, so another build.
        var port = FreePort();
        using var node = ExampleRun.Start("Cluster", $"--node --until-stdin-closes --silo-port {FreePort()} --gateway-port {port} --cluster-id refusal-{port}", redirectStdin: true);
        try
        {
            var settings = new ClusterConnectSettings { Gateways = [new IPEndPoint(IPAddress.Loopback, port)], ClusterId = $"refusal-{port}", Timeout = TestSupport.Patience };
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => ClusterPoolNode.ConnectAsync(settings));
            Assert.Contains("runs another build of the application (Cluster ", e.Message);
            Assert.Contains("Every node must run the same build as the driver", e.Message);
        }
        finally
        {
            node.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Connecting_to_gateways_where_no_node_runs_times_out_saying_what_it_waited_for()
    {
        var settings = new ClusterConnectSettings { Gateways = [new IPEndPoint(IPAddress.Loopback, FreePort())], ClusterId = "nobody", Nodes = 2, Timeout = TimeSpan.FromSeconds(3) };
        var e = await Assert.ThrowsAsync<TimeoutException>(() => ClusterPoolNode.ConnectAsync(settings));
        Assert.StartsWith("0 of the 2 ClusterPool nodes wanted joined the cluster 'nobody' through the gateways 127.0.0.1:", e.Message);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A redis-server of the test's own on a free loopback port, stopped with the test (Debian's redis-server; CI installs it).</summary>
internal sealed class RedisServer : IAsyncDisposable
{
    private readonly Process _process;

    private RedisServer(Process process, int port) => (_process, Address) = (process, $"127.0.0.1:{port}");

    public string Address { get; }

    public static async Task<RedisServer> StartAsync()
    {
        var path = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-server is not installed: the Redis membership test needs it (apt-get install -y redis-server; .ci/run installs it).");
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var info = new ProcessStartInfo(path) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--port", $"{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no" }) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new RedisServer(process, port);
        var until = DateTime.UtcNow + TestSupport.Patience;
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                var stream = client.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray());
                var buffer = new byte[16];
                var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
                if (System.Text.Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal)) return server;
            }
            catch (Exception) when (DateTime.UtcNow < until && !process.HasExited)
            {
                // Not listening yet.
            }
            if (process.HasExited || DateTime.UtcNow >= until)
            {
                await server.DisposeAsync();
                throw new InvalidOperationException($"redis-server on port {port} did not answer PING within {TestSupport.Patience.TotalSeconds} s.");
            }
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
