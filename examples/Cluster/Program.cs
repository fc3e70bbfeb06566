// A pool over a cluster: the program starts two nodes on this machine (itself again, in node mode: each an Orleans
// silo with a local pool of one worker), connects a ClusterPool to them and runs a CPU-heavy map across them, showing
// how many tasks each node ran. The same code runs on one machine with a ProcessPool: it is written against IProcessPool.
//
//   dotnet run --project examples/Cluster                      2 nodes on loopback, 40 tasks
//   dotnet run --project examples/Cluster -- --kill-one        kill a node a third of the way in: retries finish the work
//   ... -- --local                                             the same map on a local ProcessPool (the code takes an IProcessPool)
//   ... -- --kill-one --no-retries                             the same at most once: the tasks that node held fail, named
//   ... -- --join-late                                         a third node joins midway and takes its share
//   ... -- --redis 127.0.0.1:6379                              membership kept in Redis (any node may die) instead of node 0
//   ... -- --join 10.0.0.5:30000,10.0.0.6:30000                use nodes already running (each started with --node ...)
//   ... -- --node --silo-port 11111 --gateway-port 30000 [--primary 10.0.0.5:11111 | --redis host:6379] [--address 10.0.0.6]
// With MP_EXAMPLE_LOG=1 the pool's log (nodes joining, lost, calls asked again) goes to stderr.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Multiprocessing;
using Multiprocessing.Orleans;

if (args.Contains("--node")) return await RunNodeAsync(args);
if (args.Contains("--local"))
{
    // The same map on this machine's own pool: the code below the pool is written against IProcessPool.
    var count = int.Parse(Option("--tasks") ?? "40");
    await using IProcessPool local = new ProcessPool(2);
    var ran = 0;
    await foreach (var _ in CountPrimes(local, Enumerable.Range(0, count).Select(Span))) ran++;
    Console.WriteLine($"local: {count} tasks on 1 machine, {count - ran} lost");
    return count == ran ? 0 : 1;
}

var tasks = int.Parse(Option("--tasks") ?? "40");
var killOne = args.Contains("--kill-one");
var retries = args.Contains("--no-retries") ? 0 : 2;
var joinLate = args.Contains("--join-late");
var redis = Option("--redis");
var clusterId = $"example-{Environment.ProcessId}";
var started = new List<Process>();
var basePort = FreePorts();
try
{
    // The nodes: those given, or two of this program on loopback.
    ClusterConnectSettings connect;
    if (Option("--join") is { } join)
    {
        connect = new ClusterConnectSettings { Gateways = [.. join.Split(',').Select(IPEndPoint.Parse)], Redis = redis, ClusterId = Option("--cluster-id") ?? "multiprocessing" };
    }
    else
    {
        started.Add(StartNode(0, basePort, redis, clusterId));
        started.Add(StartNode(1, basePort, redis, clusterId));
        Console.WriteLine($"Started 2 nodes (pids {started[0].Id}, {started[1].Id}) on loopback{(redis is null ? "" : $", membership in Redis at {redis}")}; connecting...");
        connect = new ClusterConnectSettings { Gateways = [new(IPAddress.Loopback, basePort + 100), new(IPAddress.Loopback, basePort + 101)], Redis = redis, ClusterId = clusterId, Nodes = 2, Timeout = TimeSpan.FromSeconds(90) };
    }
    await using var pool = await ClusterPoolNode.ConnectAsync(connect, new ClusterPoolOptions
    {
        MaxRetries = retries,
        NodeCheckInterval = TimeSpan.FromSeconds(1),
        NodeTimeout = TimeSpan.FromSeconds(2),
        Logger = Environment.GetEnvironmentVariable("MP_EXAMPLE_LOG") == "1" ? new StderrLogger() : null,
    });
    Console.WriteLine($"Connected: {pool}");
    // A node starts its worker processes with its first work: a few short tasks first, until every node has run one,
    // so what follows (a node killed after it has worked, say) does not depend on how fast each node started.
    var ready = Stopwatch.StartNew();
    while (pool.Map(static (int _) => { Thread.Sleep(20); return WorkerProcess.Parent?.Pid ?? 0; }, Enumerable.Range(0, 2 * pool.Processes), chunkSize: 1).Distinct().Count() < pool.Nodes.Count
           && ready.Elapsed < TimeSpan.FromSeconds(60)) { }
    Console.WriteLine($"Every node's workers are up ({ready.Elapsed.TotalSeconds:0.0} s)");

    var perNode = new SortedDictionary<int, int>();
    var done = 0;
    var killedAt = (Stopwatch?)null;
    try
    {
        await foreach (var (_, node) in CountPrimes(pool, Spans(pool)))
        {
            done++;
            perNode[node] = perNode.GetValueOrDefault(node) + 1;
            Console.WriteLine($"  {done,4}/{tasks}  " + string.Join("  ", perNode.Select(n => $"node pid {n.Key}: {n.Value,3}")));
            // The node killed has run some tasks (so it is seen doing work, then gone) and holds one now.
            if (killOne && killedAt is null && done >= tasks / 3 && started.Count >= 2 && perNode.ContainsKey(started[1].Id))
            {
                started[1].Kill();
                killedAt = Stopwatch.StartNew();
                Console.WriteLine($"  killed the node pid {started[1].Id}; {(retries > 0 ? "what it held runs again on the others" : "what it held fails (at most once)")}");
            }
        }
    }
    catch (WorkerCrashedException e)
    {
        Console.WriteLine($"failed{(killedAt is null ? "" : $" {killedAt.Elapsed.TotalSeconds:0.0} s after the kill")}: {e.GetType().Name}: {e.Message}");
    }
    var lost = tasks - done;
    Console.WriteLine($"cluster: {tasks} tasks on {perNode.Count} nodes, {pool.Retried} retried, {lost} lost");
    return lost > 0 ? 1 : 0;
}
finally
{
    foreach (var node in started)
        if (!node.HasExited) node.Kill();
}

// The work: spans of numbers whose primes are counted. With --join-late a third node is started a quarter of the way
// in, and the rest of the spans wait until it has joined, so it is seen taking its share.
IEnumerable<(int Start, int End)> Spans(ClusterPool pool)
{
    for (var i = 0; i < tasks; i++)
    {
        if (joinLate && i == tasks / 4)
        {
            started.Add(StartNode(2, basePort, redis, clusterId));
            var waited = Stopwatch.StartNew();
            while (pool.Nodes.Count < 3 && waited.Elapsed < TimeSpan.FromSeconds(90)) Thread.Sleep(100);
            Console.WriteLine($"  node pid {started[^1].Id} joined after {waited.Elapsed.TotalSeconds:0.0} s: {pool}");
        }
        yield return Span(i);
    }
}

static (int Start, int End) Span(int i) => (3_000_000 + i * 20_000, 3_000_000 + (i + 1) * 20_000);

// The map, written against IProcessPool: a ClusterPool or a local ProcessPool run it alike.
static IAsyncEnumerable<(int Primes, int Node)> CountPrimes(IProcessPool pool, IEnumerable<(int Start, int End)> spans) =>
    pool.ImapUnorderedAsync(CountPrimesOnNode, spans);

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

// Runs on a node's worker: the count of primes in the span, and which node ran it (the worker's parent process).
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

// Node mode: an Orleans silo with a local pool, until stopped (or, when a driver started it, until the driver is gone).
static async Task<int> RunNodeAsync(string[] args)
{
    string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
    if (args.Contains("--until-stdin-closes"))
    {
        // The driver holds this node's stdin: it closes when the driver exits or is killed.
        _ = Task.Run(() => { Console.In.ReadToEnd(); stop.Cancel(); });
    }
    var settings = new ClusterNodeSettings
    {
        SiloPort = int.Parse(Option("--silo-port") ?? "11111"),
        GatewayPort = int.Parse(Option("--gateway-port") ?? "30000"),
        PrimarySilo = Option("--primary") is { } primary ? IPEndPoint.Parse(primary) : null,
        Redis = Option("--redis"),
        AdvertisedAddress = Option("--address") is { } address ? IPAddress.Parse(address) : null,
        ClusterId = Option("--cluster-id") ?? "multiprocessing",
        Workers = int.Parse(Option("--workers") ?? "1"),
    };
    Console.WriteLine($"Node pid {Environment.ProcessId}: silo port {settings.SiloPort}, gateway port {settings.GatewayPort}");
    try
    {
        await ClusterPoolNode.RunAsync(settings, stop.Token);
    }
    catch (OperationCanceledException) when (stop.IsCancellationRequested)
    {
        // Stopped.
    }
    return 0;
}

// Node i of this run: this program again (its apphost, or the dotnet host with its dll), silo port base+i, gateway
// port base+100+i; without Redis, node 0 keeps the membership.
static Process StartNode(int index, int basePort, string? redis, string clusterId)
{
    var self = Environment.ProcessPath!;
    var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
    if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(Program).Assembly.Location);
    string[] arguments = ["--node", "--until-stdin-closes", "--silo-port", $"{basePort + index}", "--gateway-port", $"{basePort + 100 + index}", "--cluster-id", clusterId];
    foreach (var a in arguments) info.ArgumentList.Add(a);
    if (redis is not null) { info.ArgumentList.Add("--redis"); info.ArgumentList.Add(redis); }
    else if (index > 0) { info.ArgumentList.Add("--primary"); info.ArgumentList.Add($"127.0.0.1:{basePort}"); }
    var process = Process.Start(info)!;
    process.OutputDataReceived += (_, _) => { };
    process.ErrorDataReceived += (_, _) => { };
    process.BeginOutputReadLine();
    process.BeginErrorReadLine();
    return process;
}

// Three silo ports and three gateway ports (base..base+2, base+100..base+102), free now.
static int FreePorts()
{
    for (var attempt = 0; attempt < 50; attempt++)
    {
        var candidate = Random.Shared.Next(20_000, 40_000);
        if (new[] { 0, 1, 2, 100, 101, 102 }.All(offset => Free(candidate + offset))) return candidate;
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

/// <summary>The smallest logger: ClusterPoolOptions.Logger takes any ILogger (a host's, usually).</summary>
sealed class StderrLogger : Microsoft.Extensions.Logging.ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Debug;
    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss.fff} {logLevel}] {formatter(state, exception)} {exception?.GetType().Name} {exception?.Message}");
}
