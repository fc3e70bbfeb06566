// A pool over a cluster on this machine: the program starts two nodes (itself again, in node mode: each an Orleans
// silo with a local pool of one worker), connects a ClusterPool to them and runs a CPU-heavy Map across them, with
// each node's progress live. With --kill-one it kills a node in the middle, and the pool's retries finish the work.
//   dotnet run --project examples/Cluster [-- --kill-one] [--tasks N]
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Multiprocessing;
using Multiprocessing.Orleans;

if (args is ["--node", var index, var basePort, var driverPid])
{
    // Node mode: serve until the driver goes away (a node started by a driver never outlives it).
    var port = int.Parse(basePort);
    var i = int.Parse(index);
    using var driverGone = new CancellationTokenSource();
    _ = Task.Run(async () =>
    {
        while (Process.GetProcesses().Any(p => p.Id == int.Parse(driverPid))) await Task.Delay(500);
        driverGone.Cancel();
    });
    await ClusterPoolNode.RunAsync(new ClusterNodeSettings
    {
        SiloPort = port + i,
        GatewayPort = port + 100 + i,
        PrimarySilo = i == 0 ? null : new IPEndPoint(IPAddress.Loopback, port),
        ClusterId = $"example-{port}",
        Workers = 1,
    }, driverGone.Token);
    return 0;
}

var killOne = args.Contains("--kill-one");
var tasks = args.SkipWhile(a => a != "--tasks").Skip(1).Select(int.Parse).FirstOrDefault(40);
var basePortOfCluster = FreePorts();
var nodes = Enumerable.Range(0, 2).Select(i => StartNode(i, basePortOfCluster)).ToArray();
try
{
    Console.WriteLine($"Started 2 nodes (pids {nodes[0].Id}, {nodes[1].Id}) on loopback ports {basePortOfCluster}+; connecting...");
    await using var pool = await ClusterPoolNode.ConnectAsync([basePortOfCluster + 100, basePortOfCluster + 101], nodes: 2, TimeSpan.FromSeconds(90), $"example-{basePortOfCluster}",
        new ClusterPoolOptions { MaxRetries = 2, NodeCheckInterval = TimeSpan.FromSeconds(1), NodeTimeout = TimeSpan.FromSeconds(2) });
    Console.WriteLine($"Connected: {pool}");

    var spans = Enumerable.Range(0, tasks).Select(i => (Start: 3_000_000 + i * 20_000, End: 3_000_000 + (i + 1) * 20_000)).ToArray();
    var perNode = new Dictionary<int, int>();
    var done = 0;
    var killed = false;
    await foreach (var (_, node) in pool.ImapUnorderedAsync(CountPrimesOnNode, spans))
    {
        done++;
        perNode[node] = perNode.GetValueOrDefault(node) + 1;
        Console.WriteLine($"  {done,3}/{tasks}  " + string.Join("  ", nodes.Select((n, i) => $"node {i} (pid {n.Id}): {perNode.GetValueOrDefault(n.Id),3}")));
        if (killOne && !killed && done >= tasks / 3)
        {
            nodes[1].Kill();
            killed = true;
            Console.WriteLine($"  killed node 1 (pid {nodes[1].Id}); its tasks go to node 0");
        }
    }
    var lost = tasks - done;
    Console.WriteLine($"cluster: {tasks} tasks on {pool.Nodes.Count} nodes, {pool.Retried} retried, {lost} lost");
    return lost > 0 ? 1 : 0;
}
finally
{
    foreach (var node in nodes)
        if (!node.HasExited) node.Kill();
}

// Runs on a node's worker: the count of primes in the span, and which node's pool ran it (the worker's parent).
static (int Primes, int Node) CountPrimesOnNode((int Start, int End) span)
{
    var count = 0;
    for (var n = span.Start; n < span.End; n++)
    {
        var prime = n > 1;
        for (var d = 2; prime && (long)d * d <= n; d++) prime = n % d != 0;
        if (prime) count++;
    }
    return (count, WorkerProcess.Parent?.Pid ?? 0);
}

static Process StartNode(int index, int basePort)
{
    // This program again: its apphost, or the dotnet host with its dll.
    var self = Environment.ProcessPath!;
    var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true };
    if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(ClusterPool).Assembly.Location.Replace("Multiprocessing.Orleans.dll", "Cluster.dll"));
    foreach (var a in new[] { "--node", index.ToString(), basePort.ToString(), Environment.ProcessId.ToString() }) info.ArgumentList.Add(a);
    var process = Process.Start(info)!;
    process.OutputDataReceived += (_, _) => { };
    process.ErrorDataReceived += (_, _) => { };
    process.BeginOutputReadLine();
    process.BeginErrorReadLine();
    return process;
}

// Two silo ports and two gateway ports (base, base+1, base+100, base+101), free now.
static int FreePorts()
{
    for (var attempt = 0; attempt < 50; attempt++)
    {
        var candidate = Random.Shared.Next(20_000, 40_000);
        if (new[] { candidate, candidate + 1, candidate + 100, candidate + 101 }.All(Free)) return candidate;
    }
    throw new InvalidOperationException("No free ports found on loopback.");

    static bool Free(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
