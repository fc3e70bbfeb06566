// Pool and process benchmarks, side by side with CPython's multiprocessing on the same machine.
// Run:  dotnet run -c Release --project bench/PoolBench [-- --reps 5 --markdown]
using System.Diagnostics;
using System.Text.Json;
using Multiprocessing;
using Spectre.Console;

if (args.Contains("--cold-pool"))
{
    // Child mode: the first pool of a fresh process, where no spare worker exists yet.
    var cold = Stopwatch.StartNew();
    using (var first = new ProcessPool(new ProcessPoolOptions { Processes = 2 })) first.Apply(() => 1);
    Console.WriteLine(cold.Elapsed.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
    return;
}

var reps = args.SkipWhile(a => a != "--reps").Skip(1).Select(int.Parse).FirstOrDefault(5);
var markdown = args.Contains("--markdown");

var python = BenchSupport.RunCPython("pool_bench.py", reps.ToString());
var rows = new List<Row>();

// Pool of 2 started through its first result: first in a fresh process (cold), and in a running
// process a moment after its previous pool (spare workers ready). CPython's spawn is cold every time.
rows.Add(new Row("Pool of 2: start through first result, first pool of a process", "ms", LowerIsBetter: true,
    Median(reps, ColdPool), "pool_start_ms"));
rows.Add(new Row("Pool of 2: start through first result, later pools (spares ready)", "ms", LowerIsBetter: true,
    Median(reps, () =>
    {
        Thread.Sleep(500); // an application that starts a pool now and then, not back to back
        var sw = Stopwatch.StartNew();
        using var pool = new ProcessPool(new ProcessPoolOptions { Processes = 2 });
        pool.Apply(() => 1);
        return sw.Elapsed.TotalMilliseconds;
    }), "pool_start_ms"));

// WorkerProcess start to join of a trivial target: now and then (a spare is ready), and back to back,
// where what is sustained is bounded by how fast the machine boots runtimes (spares only smooth it).
rows.Add(new Row("Process: Start() to Join() of a no-op, now and then (spares ready)", "ms", LowerIsBetter: true,
    Median(reps, () =>
    {
        Thread.Sleep(500);
        return StartToJoin();
    }), "process_ms"));
rows.Add(new Row("Process: Start() to Join() of a no-op, 21 back to back", "ms", LowerIsBetter: true,
    Median(reps, () => Enumerable.Range(0, 21).Select(_ => StartToJoin()).Order().ElementAt(10)), "process_ms"));

static double StartToJoin()
{
    var sw = Stopwatch.StartNew();
    var p = new WorkerProcess(Nothing);
    p.Start();
    p.Join();
    return sw.Elapsed.TotalMilliseconds;
}

using (var pool = new ProcessPool(new ProcessPoolOptions { Processes = 2 }))
{
    var items = Enumerable.Range(0, 1_000_000).ToArray();
    var small = Enumerable.Range(0, 20_000).ToArray();
    // Steady state, as BenchmarkDotNet measures: run each path for two seconds first, so that the
    // parent's and the workers' hot methods have left the JIT's first tier (CPython has no such phase).
    WarmUp(() => pool.Map(Inc, items));
    WarmUp(() => pool.Map(Inc, small, 1));
    WarmUp(() => { for (var i = 0; i < 100; i++) pool.Apply(One); });

    rows.Add(new Row("Map of 1,000,000 trivial items", "items/s", LowerIsBetter: false,
        Median(reps, () => 1_000_000 / Seconds(() => pool.Map(Inc, items))), "map_items_per_s"));
    rows.Add(new Row("Map, chunk size 1, 20,000 items", "items/s", LowerIsBetter: false,
        Median(reps, () => 20_000 / Seconds(() => pool.Map(Inc, small, 1))), "map_chunk1_items_per_s"));
    const int calls = 2000;
    rows.Add(new Row("Apply round trip on a warm pool", "us", LowerIsBetter: true,
        Median(reps, () => Seconds(() => { for (var i = 0; i < calls; i++) pool.Apply(One); }) / calls * 1e6), "apply_us"));

    // CPU-bound speedup over sequential C#: this one compares against ourselves, not CPython.
    // 160 slices of 12,500 numbers: small enough that the last slices do not leave one worker idle for long.
    var slices = Enumerable.Range(0, 160).Select(i => (i * 12_500, (i + 1) * 12_500)).ToArray();
    pool.Map(CountPrimes, slices, 1);
    var sequential = Median(reps, () => Seconds(() => slices.Select(CountPrimes).Sum()));
    var parallel = Median(reps, () => Seconds(() => pool.Map(CountPrimes, slices, 1).Sum()));
    rows.Add(new Row("CPU-bound speedup, 2 workers over sequential C#", "x", LowerIsBetter: false, sequential / parallel, null));
}

Print(rows, python, markdown);
return;

static double ColdPool()
{
    var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
    info.ArgumentList.Add(typeof(BenchSupport).Assembly.Location);
    info.ArgumentList.Add("--cold-pool");
    using var child = Process.Start(info)!;
    var output = child.StandardOutput.ReadToEnd();
    if (!child.WaitForExit(TimeSpan.FromMinutes(1))) { child.Kill(); throw new TimeoutException("cold pool run hung"); }
    return double.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
}

static void WarmUp(Action work)
{
    var clock = Stopwatch.StartNew();
    while (clock.Elapsed < TimeSpan.FromSeconds(2)) work();
}

static int Inc(int x) => x + 1;
static int One() => 1;
static void Nothing() { }

static int CountPrimes((int Start, int End) span)
{
    var count = 0;
    for (var n = span.Start; n < span.End; n++)
    {
        if (n < 2) continue;
        var prime = true;
        for (var d = 2; (long)d * d <= n; d++)
            if (n % d == 0) { prime = false; break; }
        if (prime) count++;
    }
    return count;
}

static double Seconds(Action work)
{
    var sw = Stopwatch.StartNew();
    work();
    return sw.Elapsed.TotalSeconds;
}

static double Median(int reps, Func<double> measure)
{
    var values = Enumerable.Range(0, reps).Select(_ => measure()).Order().ToArray();
    return values[values.Length / 2];
}

static void Print(List<Row> rows, JsonElement? python, bool markdown)
{
    string Num(double v) => v >= 1000 ? v.ToString("N0") : v.ToString("0.0");
    string Py(Row r, string method) => r.Key is null || python is null ? "-" : Num(python.Value.GetProperty(method).GetProperty(r.Key).GetDouble());
    string Ratio(Row r, string method)
    {
        if (r.Key is null || python is null) return "-";
        var py = python.Value.GetProperty(method).GetProperty(r.Key).GetDouble();
        var better = r.LowerIsBetter ? py / r.Value : r.Value / py;
        return $"{better:0.0}x";
    }

    var headers = new[] { "Benchmark", "Unit", ".NET (this library)", "CPython fork", "CPython spawn", "vs fork", "vs spawn" };
    var lines = rows.Select(r => new[] { r.Name, r.Unit, Num(r.Value), Py(r, "fork"), Py(r, "spawn"), Ratio(r, "fork"), Ratio(r, "spawn") }).ToList();
    if (markdown)
    {
        Console.WriteLine("| " + string.Join(" | ", headers) + " |");
        Console.WriteLine("|" + string.Concat(headers.Select(_ => "---|")));
        foreach (var l in lines) Console.WriteLine("| " + string.Join(" | ", l) + " |");
    }
    else
    {
        var table = new Table().Title("Multiprocessing vs CPython multiprocessing (medians; ratios > 1 mean this library is faster)");
        foreach (var h in headers) table.AddColumn(h);
        foreach (var l in lines) table.AddRow(l.Select(Markup.Escape).ToArray());
        AnsiConsole.Write(table);
    }
    Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
}

internal sealed record Row(string Name, string Unit, bool LowerIsBetter, double Value, string? Key);
