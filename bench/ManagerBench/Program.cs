// Manager throughput, .NET against CPython's multiprocessing.Manager in the same run:
//   dotnet run -c Release --project bench/ManagerBench [-- dictOps incrementsPerWorker]
// Both sides: a local manager (server process), one client setting dict entries; then 4 worker
// processes incrementing one counter, timed from a common start signal (process start-up excluded).
using System.Diagnostics;
using System.Text.Json;
using Multiprocessing;

var dictOps = args.Length > 0 ? int.Parse(args[0]) : 50_000;
var increments = args.Length > 1 ? int.Parse(args[1]) : 1_000;
const int Workers = 4;

const int Rounds = 3;

// Rounds alternate between CPython and .NET so that load from elsewhere on the machine hits both; medians are reported.
var py = new List<JsonElement>();
var dictRates = new List<double>();
var lockRates = new List<double>();
var atomicRates = new List<double>();
var totals = new List<int>();
for (var round = 0; round < Rounds; round++)
{
    py.Add(BenchSupport.RunCPython("manager_bench.py", Math.Min(dictOps, 20_000).ToString(), increments.ToString()) ?? throw new InvalidOperationException("manager_bench.py failed; see stderr."));
    await using var manager = await Manager.StartAsync();
    var d = manager.Dictionary<int, int>();
    // Steady state, as in the other benchmarks: two seconds of the same calls first, so that the client's and
    // the server's paths have left the JIT's first tier (CPython has no such phase).
    for (var warm = Stopwatch.StartNew(); warm.Elapsed < TimeSpan.FromSeconds(2);)
        for (var i = 0; i < 1000; i++) d[i] = i;
    var watch = Stopwatch.StartNew();
    for (var i = 0; i < dictOps; i++) d[i % 1000] = i;
    dictRates.Add(dictOps / watch.Elapsed.TotalSeconds);
    lockRates.Add(Counter(manager, increments, atomic: false, out var lockTotal));
    atomicRates.Add(Counter(manager, increments, atomic: true, out var atomicTotal));
    totals.Add(lockTotal);
    totals.Add(atomicTotal);
}

var python = py[0];
Console.WriteLine($"Manager benchmark: .NET {Environment.Version} vs CPython {python.GetProperty("python").GetString()} ({python.GetProperty("start_method").GetString()} start method), " +
    $"{Environment.ProcessorCount} cores, median of {Rounds} interleaved rounds");
Console.WriteLine();
Console.WriteLine($"| {"benchmark",-52} | {"CPython",10} | {".NET",10} | {"ratio",6} |");
Console.WriteLine($"|{new string('-', 54)}|{new string('-', 12)}|{new string('-', 12)}|{new string('-', 8)}|");
var pyDict = Median(py.Select(p => p.GetProperty("dict_set_ops_per_s").GetDouble()));
var pyCounter = Median(py.Select(p => p.GetProperty("counter_increments_per_s").GetDouble()));
Row("dict set, one client (ops/s)", pyDict, Median(dictRates));
Row($"counter, {Workers} processes: lock + read + write (incr/s)", pyCounter, Median(lockRates));
Row($"counter, {Workers} processes: .NET atomic Update (incr/s)", pyCounter, Median(atomicRates));
Console.WriteLine();
Console.WriteLine($"Rounds (.NET dict ops/s): {string.Join(", ", dictRates.Select(r => r.ToString("N0")))}; (CPython dict ops/s): {string.Join(", ", py.Select(p => p.GetProperty("dict_set_ops_per_s").GetDouble().ToString("N0")))}");
var pyTotals = py.Select(p => p.GetProperty("counter_total").GetInt32()).ToList();
Console.WriteLine($"Counter totals: CPython {string.Join(", ", pyTotals)}; .NET {string.Join(", ", totals)} (expected {Workers * increments} each).");
return totals.All(t => t == Workers * increments) ? 0 : 1;

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted[sorted.Length / 2];
}

static void Row(string name, double cpython, double dotnet) =>
    Console.WriteLine($"| {name,-52} | {cpython,10:N0} | {dotnet,10:N0} | {dotnet / cpython,5:0.0}x |");

static double Counter(Manager manager, int increments, bool atomic, out int total)
{
    var counter = manager.Value(0);
    var guard = manager.Lock();
    var ready = manager.Queue<int>();
    var go = manager.Queue<int>();
    var spans = manager.Queue<(long Start, long End)>();
    var workers = Enumerable.Range(0, Workers).Select(_ => new WorkerProcess(() =>
    {
        ready.Put(1);
        go.Get();
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < increments; i++)
        {
            if (atomic) counter.Update(x => x + 1);
            else using (guard.Acquire()) counter.Value = counter.Value + 1;
        }
        spans.Put((start, Stopwatch.GetTimestamp()));
    })).ToList();
    workers.ForEach(w => w.Start());
    for (var i = 0; i < Workers; i++) ready.Get();
    for (var i = 0; i < Workers; i++) go.Put(1);
    var measured = Enumerable.Range(0, Workers).Select(_ => spans.Get()).ToList();
    foreach (var w in workers)
    {
        if (!w.Join(TimeSpan.FromMinutes(2))) throw new TimeoutException($"{w.Name} did not finish.");
        if (w.Exception is { } e) throw new InvalidOperationException($"{w.Name} failed: {e.Message}", e);
    }
    total = counter.Value;
    // Stopwatch timestamps are CLOCK_MONOTONIC on Linux: comparable across processes.
    var seconds = Stopwatch.GetElapsedTime(measured.Min(s => s.Start), measured.Max(s => s.End)).TotalSeconds;
    return Workers * increments / seconds;
}

