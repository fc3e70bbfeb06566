// A consumer of the Multiprocessing.Orleans package alone: it starts one node of itself on loopback and drives a
// ClusterPool over it, as a user's app would after `dotnet add package Multiprocessing.Orleans`.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Multiprocessing;
using Multiprocessing.Orleans;

if (args is ["--node", var siloPort, var gatewayPort, var clusterId])
{
    using var stop = new CancellationTokenSource();
    _ = Task.Run(() => { Console.In.ReadToEnd(); stop.Cancel(); }); // ends with the driver, which holds stdin
    try
    {
        await ClusterPoolNode.RunAsync(new ClusterNodeSettings { SiloPort = int.Parse(siloPort), GatewayPort = int.Parse(gatewayPort), ClusterId = clusterId, Workers = 2 }, stop.Token);
    }
    catch (OperationCanceledException)
    {
    }
    return 0;
}

var (silo, gateway, cluster) = (FreePort(), FreePort(), $"consumer-{Environment.ProcessId}");
var self = Environment.ProcessPath!;
var info = new ProcessStartInfo(self) { RedirectStandardInput = true };
if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(ClusterPool).Assembly.Location.Replace("Multiprocessing.Orleans.dll", "ClusterApp.dll"));
foreach (var a in new[] { "--node", $"{silo}", $"{gateway}", cluster }) info.ArgumentList.Add(a);
using var node = Process.Start(info)!;
try
{
    await using var pool = await ClusterPoolNode.ConnectAsync(new ClusterConnectSettings { Gateways = [new IPEndPoint(IPAddress.Loopback, gateway)], ClusterId = cluster, Timeout = TimeSpan.FromMinutes(2) });
    IProcessPool asPool = pool;
    var squares = asPool.Map(static (int x) => x * x, Enumerable.Range(0, 100), chunkSize: 7);
    if (!squares.SequenceEqual(Enumerable.Range(0, 100).Select(x => x * x))) throw new InvalidOperationException("wrong results");
    var pids = asPool.Map(static (int _) => { Thread.Sleep(50); return Environment.ProcessId; }, Enumerable.Range(0, 8), chunkSize: 1).Distinct().Count();
    var thrown = "";
    try { asPool.Apply(static () => int.Parse("not a number")); } catch (FormatException e) { thrown = e.GetType().Name; }
    Console.WriteLine($"cluster: {pool.Nodes.Count} node, {pool.Processes} slots, {pids} worker processes, {thrown} rebuilt");
    Console.WriteLine("cluster checks passed");
    return 0;
}
finally
{
    node.Kill(entireProcessTree: true);
}

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}
