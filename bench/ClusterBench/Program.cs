// ClusterPool over 2 nodes on loopback (this program again, in node mode: each an Orleans silo with a pool of one
// worker), side by side with CPython's multiprocessing.Pool(2) on this machine, and with the issue's goals.
// Run:  dotnet run -c Release --project bench/ClusterBench [-- --reps 5 --markdown]
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Multiprocessing;
using Microsoft.Extensions.DependencyInjection;
using Multiprocessing.Orleans;
using static BenchSupport;

if (args.Contains("--node"))
{
    // Node mode: serve until the benchmark (which holds stdin) is gone.
    using var stop = new CancellationTokenSource();
    _ = Task.Run(() => { Console.In.ReadToEnd(); stop.Cancel(); });
    try
    {
        await ClusterPoolNode.RunAsync(new ClusterNodeSettings
        {
            SiloPort = int.Parse(Option("--silo-port")!),
            GatewayPort = int.Parse(Option("--gateway-port")!),
            PrimarySilo = Option("--primary") is { } primary ? IPEndPoint.Parse(primary) : null,
            ClusterId = Option("--cluster-id")!,
            Workers = 1,
        }, stop.Token);
    }
    catch (OperationCanceledException)
    {
    }
    return;
}

if (Option("--first-call") is { } scenario)
{
    // Child mode: a fresh driver process, no warm-up, against the running nodes: what a one-off job sees.
    Console.WriteLine((await FirstCallAsync(scenario, Option("--gateways")!, Option("--cluster-id")!)).ToString(CultureInfo.InvariantCulture));
    return;
}

var reps = int.Parse(Option("--reps") ?? "5");
// --rows apply,chunk1,map,cpu,first: only those (all by default).
var only = Option("--rows")?.Split(',');
bool Wanted(string row) => only is null || only.Contains(row);
var markdown = args.Contains("--markdown");
var ports = FreeLoopbackPorts();
var clusterId = $"bench-{Environment.ProcessId}";
var gateways = $"127.0.0.1:{ports[2]},127.0.0.1:{ports[3]}";
var nodes = new[] { StartNode(0), StartNode(1) };
var rows = new List<Row>();
try
{
    await using (var pool = await Connect(gateways, clusterId, 2))
    {
        // Steady state: each path runs for six seconds first, on the driver and on the nodes (three processes finish
        // compiling their hot paths in the background for seconds after the first calls).
        var items = Enumerable.Range(0, 1_000_000).ToArray();
        var small = Enumerable.Range(0, 20_000).ToArray();
        const int calls = 2000;
        if (Wanted("apply"))
        {
            WarmUp(() => { for (var i = 0; i < 100; i++) pool.Apply(One); }, seconds: 6);
            rows.Add(new Row("Apply round trip through a node", "us", true, Median(() => Seconds(() => { for (var i = 0; i < calls; i++) pool.Apply(One); }) / calls * 1e6), "apply_us", Goal: 500));
            // The floor under it: Orleans' own round trip from this driver to a node's grain, with no work behind it.
            var node = pool.Connection!.Services.GetRequiredService<Orleans.IClusterClient>().GetGrain<INodeGrain>(pool.Nodes[0]);
            WarmUp(() => { for (var i = 0; i < 100; i++) node.Describe().GetAwaiter().GetResult(); }, seconds: 3);
            rows.Add(new Row("  (the floor: an Orleans round trip to the node's grain, no work)", "us", true, Median(() => Seconds(() => { for (var i = 0; i < calls; i++) node.Describe().GetAwaiter().GetResult(); }) / calls * 1e6), null));
        }
        if (Wanted("chunk1"))
        {
            WarmUp(() => pool.Map(Inc, small, 1), seconds: 6);
            rows.Add(new Row("Map, chunk size 1, 20,000 items", "tasks/s", false, Median(() => 20_000 / Seconds(() => pool.Map(Inc, small, 1))), "map_chunk1_items_per_s", Goal: 20_000));
        }
        if (Wanted("map"))
        {
            WarmUp(() => pool.Map(Inc, items), seconds: 6);
            rows.Add(new Row("Map of 1,000,000 trivial items", "items/s", false, Median(() => 1_000_000 / Seconds(() => pool.Map(Inc, items))), "map_items_per_s"));
        }

        // CPU-bound: 2 nodes of 1 worker each over sequential C# in this process, both warm. The cluster's warm-up is
        // longer: three processes (this one and two nodes) finish compiling their hot paths in the background for
        // seconds after the first runs, and a measure taken meanwhile shows that, not the steady state.
        if (Wanted("cpu"))
        {
            // The same work (numbers 2,000,000 to 4,000,000) cut two ways: 80 tasks of about 7 ms, and 20 of about
            // 30 ms (Ray advises tasks of 10 ms or more; Dask counts about 1 ms of overhead per task).
            foreach (var (tasks, label) in new[] { (80, "80 tasks of ~7 ms"), (20, "20 tasks of ~30 ms") })
            {
                var width = 2_000_000 / tasks;
                var slices = Enumerable.Range(0, tasks).Select(i => (2_000_000 + i * width, 2_000_000 + (i + 1) * width)).ToArray();
                WarmUp(() => slices.Select(CountPrimes).Sum());
                var sequential = Median(() => Seconds(() => slices.Select(CountPrimes).Sum()));
                WarmUp(() => pool.Map(CountPrimes, slices, 1), seconds: 6);
                var cluster = Median(() => Seconds(() => pool.Map(CountPrimes, slices, 1).Sum()));
                rows.Add(new Row($"CPU-bound speedup, 2 nodes x 1 worker over sequential C#, {label}", "x", false, sequential / cluster, null, Goal: 1.8));
                // For reference, what this machine gives a local pool of 2 on the same tasks (no cluster in the way).
                using var local = new ProcessPool(2);
                WarmUp(() => local.Map(CountPrimes, slices, 1), seconds: 4);
                var localPool = Median(() => Seconds(() => local.Map(CountPrimes, slices, 1).Sum()));
                rows.Add(new Row($"  (reference: a local ProcessPool(2) on the same {tasks} tasks)", "x", false, sequential / localPool, null));
            }
        }
    }

    // First calls: a fresh driver process each time (the nodes are up and have run work: a driver joining a cluster).
    if (Wanted("first"))
    {
    rows.Add(FirstCallRow("First calls: connect, then Apply over the first 2,000 calls", "us", true, "apply", "apply"));
    rows.Add(FirstCallRow("First calls: connect, then the first Map, chunk size 1, 20,000 items", "tasks/s", false, "chunk1", "chunk1"));
    rows.Add(FirstCallRow("First calls: connect, then the first Map of 1,000,000 items", "items/s", false, "map", "map"));
    rows.Add(new Row("First calls: connect to 2 nodes (client start to pool ready)", "ms", true, Median(() => InFreshDriver("connect")), null));
    }
}
finally
{
    foreach (var node in nodes)
        if (!node.HasExited) node.Kill(entireProcessTree: true);
}

var python = Wanted("apply") || Wanted("chunk1") || Wanted("map") ? BenchSupport.RunCPython("pool_bench.py", reps.ToString(CultureInfo.InvariantCulture)) : null;
Print(rows, python, markdown);
return;

Row FirstCallRow(string name, string unit, bool lowerIsBetter, string scenario, string cpython) => new(name, unit, lowerIsBetter,
    Median(() => InFreshDriver(scenario)), null,
    Fork: Median(() => BenchSupport.RunCPythonValue("first_calls.py", cpython, "fork")),
    Spawn: Median(() => BenchSupport.RunCPythonValue("first_calls.py", cpython, "spawn")));

double InFreshDriver(string scenario)
{
    var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
    foreach (var a in new[] { typeof(Row).Assembly.Location, "--first-call", scenario, "--gateways", gateways, "--cluster-id", clusterId }) info.ArgumentList.Add(a);
    using var child = Process.Start(info)!;
    var output = child.StandardOutput.ReadToEndAsync();
    if (!child.WaitForExit(TimeSpan.FromMinutes(3))) { child.Kill(); throw new TimeoutException($"a fresh driver ({scenario}) hung"); }
    return double.Parse(output.Result.Trim().Split('\n')[^1], CultureInfo.InvariantCulture);
}

static async Task<double> FirstCallAsync(string scenario, string gateways, string clusterId)
{
    var connecting = Stopwatch.StartNew();
    await using var pool = await Connect(gateways, clusterId, 2);
    var connected = connecting.Elapsed.TotalMilliseconds;
    switch (scenario)
    {
        case "connect":
            return connected;
        case "apply":
            // CPython's first_calls.py times 5,000; 2,000 here keeps the row's run short. Both are per call.
            return Seconds(() => { for (var i = 0; i < 2000; i++) pool.Apply(One); }) / 2000 * 1e6;
        case "chunk1":
            var small = Enumerable.Range(0, 20_000).ToArray();
            return 20_000 / Seconds(() => pool.Map(Inc, small, 1));
        case "map":
            var items = Enumerable.Range(0, 1_000_000).ToArray();
            return 1_000_000 / Seconds(() => pool.Map(Inc, items));
        default:
            throw new ArgumentException($"unknown first-call scenario '{scenario}'");
    }
}

static Task<ClusterPool> Connect(string gateways, string clusterId, int nodes) => ClusterPoolNode.ConnectAsync(new ClusterConnectSettings
{
    Gateways = [.. gateways.Split(',').Select(IPEndPoint.Parse)],
    ClusterId = clusterId,
    Nodes = nodes,
    Timeout = TimeSpan.FromSeconds(120),
});

Process StartNode(int index)
{
    var info = new ProcessStartInfo("dotnet") { RedirectStandardInput = true }; // a node prints nothing; it ends when stdin closes
    string[] arguments = [typeof(Row).Assembly.Location, "--node", "--silo-port", $"{ports[index]}", "--gateway-port", $"{ports[2 + index]}", "--cluster-id", clusterId];
    foreach (var a in arguments) info.ArgumentList.Add(a);
    if (index > 0) { info.ArgumentList.Add("--primary"); info.ArgumentList.Add($"127.0.0.1:{ports[0]}"); }
    return Process.Start(info)!;
}

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

double Median(Func<double> measure) => BenchSupport.Median(reps, measure);

static int Inc(int x) => x + 1;
static int One() => 1;

static int CountPrimes((int Start, int End) span)
{
    var count = 0;
    for (var n = span.Start; n < span.End; n++)
    {
        var prime = n > 1;
        for (var d = 2; prime && (long)d * d <= n; d++) prime = n % d != 0;
        if (prime) count++;
    }
    return count;
}

// Four ports the system has free now: two silo ports, then two gateway ports.
static int[] FreeLoopbackPorts()
{
    var listeners = Enumerable.Range(0, 4).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToArray();
    foreach (var l in listeners) l.Start();
    var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
    foreach (var l in listeners) l.Stop();
    return ports;
}

static void Print(List<Row> rows, JsonElement? python, bool markdown)
{
    string Num(double v) => double.IsNaN(v) ? "-" : v >= 1000 ? v.ToString("N0", CultureInfo.InvariantCulture) : v.ToString("0.0", CultureInfo.InvariantCulture);
    double? PyValue(Row r, string method) =>
        (method == "fork" ? r.Fork : r.Spawn) is { } own ? own
        : r.Key is null || python is null || !python.Value.TryGetProperty(method, out var m) || !m.TryGetProperty(r.Key, out var v) ? null
        : v.GetDouble();
    string Ratio(Row r, string method) => PyValue(r, method) is { } py && !double.IsNaN(py) ? $"{(r.LowerIsBetter ? py / r.Value : r.Value / py):0.0}x" : "-";
    string Goal(Row r) => r.Goal is not { } goal ? "-"
        : $"{(r.LowerIsBetter ? "< " : ">= ")}{Num(goal)}: {((r.LowerIsBetter ? r.Value < goal : r.Value >= goal) ? "met" : "missed")}";

    var headers = new[] { "Benchmark", "Unit", "ClusterPool, 2 nodes", "CPython Pool(2) fork", "CPython Pool(2) spawn", "vs fork", "vs spawn", "Goal" };
    var lines = rows.Select(r => new[] { r.Name, r.Unit, Num(r.Value), PyValue(r, "fork") is { } f ? Num(f) : "-", PyValue(r, "spawn") is { } s ? Num(s) : "-", Ratio(r, "fork"), Ratio(r, "spawn"), Goal(r) }).ToList();
    BenchTable.Print("ClusterPool on 2 loopback nodes vs CPython's local multiprocessing.Pool(2) (medians; ratios > 1 mean ClusterPool is faster)", headers, lines, markdown);
}

/// <summary>A table row; Fork and Spawn carry CPython's figures when measured apart from pool_bench.py.</summary>
internal sealed record Row(string Name, string Unit, bool LowerIsBetter, double Value, string? Key, double? Fork = null, double? Spawn = null, double? Goal = null);
