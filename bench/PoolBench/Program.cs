// Pool and process benchmarks, side by side with CPython's multiprocessing on the same machine.
// Run:  dotnet run -c Release --project bench/PoolBench [-- --reps 5 --markdown]
using System.Diagnostics;
using System.Text.Json;
using Multiprocessing;
using static BenchSupport;

if (args.Contains("--cold-pool"))
{
    // Child mode: the first pool of a fresh process, where no spare worker exists yet.
    var cold = Stopwatch.StartNew();
    using (var first = new ProcessPool(new ProcessPoolOptions { Processes = 2 })) first.Apply(() => 1);
    Console.WriteLine(cold.Elapsed.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
    return;
}

if (args.SkipWhile(a => a != "--first-call").Skip(1).FirstOrDefault() is { } scenario)
{
    // Child mode: one first-call scenario in a fresh process, as a one-off job sees it (no warm-up).
    Console.WriteLine(FirstCall(scenario).ToString(System.Globalization.CultureInfo.InvariantCulture));
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

// First calls: each a fresh process, no warm-up (what a user's one-off job sees), CPython the same way.
rows.Add(FirstCallRow("First calls: Apply round trip over the first 5,000 calls", "us", true, "apply"));
rows.Add(FirstCallRow("First calls: the first Map of 1,000,000 trivial items", "items/s", false, "map"));
rows.Add(FirstCallRow("First calls: the first Map, chunk size 1, 20,000 items", "items/s", false, "chunk1"));
rows.Add(new Row("First calls: light Map, then 40 heavy items (chunk size 1), speedup over sequential C#", "x", LowerIsBetter: false,
    Median(reps, () => InFreshProcess("light-heavy")), null));

Row FirstCallRow(string name, string unit, bool lowerIsBetter, string key) => new(name, unit, lowerIsBetter,
    Median(reps, () => InFreshProcess(key)), key,
    Median(reps, () => BenchSupport.RunCPythonValue("first_calls.py", key, "fork")),
    Median(reps, () => BenchSupport.RunCPythonValue("first_calls.py", key, "spawn")));

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
    // Records declared as their abstract base travel with their runtime type (pickle keeps the class too).
    Shape[] shapes = [.. Enumerable.Range(0, 100_000).Select(i => i % 2 == 0 ? (Shape)new Circle(i % 7 + 1) : new Rect(i % 5 + 1, i % 3 + 1))];
    WarmUp(() => pool.Map(Area, shapes));

    rows.Add(new Row("Map of 1,000,000 trivial items", "items/s", LowerIsBetter: false,
        Median(reps, () => 1_000_000 / Seconds(() => pool.Map(Inc, items))), "map_items_per_s"));
    rows.Add(new Row("Map, chunk size 1, 20,000 items", "items/s", LowerIsBetter: false,
        Median(reps, () => 20_000 / Seconds(() => pool.Map(Inc, small, 1))), "map_chunk1_items_per_s"));
    rows.Add(new Row("Map of 100,000 polymorphic records (Shape: Circle or Rect), area of each", "items/s", LowerIsBetter: false,
        Median(reps, () => 100_000 / Seconds(() => pool.Map(Area, shapes))), "map_shapes_per_s"));
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

static double ColdPool() => InFreshProcess(null);

/// <summary>Runs this benchmark again in a fresh process, in a child mode (--cold-pool, or --first-call SCENARIO), and reads its figure.</summary>
static double InFreshProcess(string? firstCall)
{
    var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
    info.ArgumentList.Add(typeof(BenchSupport).Assembly.Location);
    if (firstCall is null) info.ArgumentList.Add("--cold-pool");
    else { info.ArgumentList.Add("--first-call"); info.ArgumentList.Add(firstCall); }
    using var child = Process.Start(info)!;
    var output = child.StandardOutput.ReadToEnd();
    if (!child.WaitForExit(TimeSpan.FromMinutes(2))) { child.Kill(); throw new TimeoutException("a fresh-process run hung"); }
    return double.Parse(output.Trim().Split('\n')[^1], System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>One first-call scenario, in this process: the figure a user's one-off job sees.</summary>
static double FirstCall(string scenario)
{
    if (scenario == "light-heavy")
    {
        // The sequential run comes first, so both sides compile CountPrimes cold.
        var heavy = Enumerable.Range(0, 40).Select(i => (2_000_000 + i * 25_000, 2_000_000 + (i + 1) * 25_000)).ToArray();
        var sequential = Seconds(() => heavy.Select(CountPrimes).Sum());
        using var cpu = new ProcessPool(2);
        cpu.Map(CountPrimes, Enumerable.Range(0, 2000).Select(i => (i, i + 1)), 1); // light work first, as in the report
        return sequential / Seconds(() => cpu.Map(CountPrimes, heavy, 1));
    }
    using var pool = new ProcessPool(2);
    switch (scenario)
    {
        case "apply":
            return Seconds(() => { for (var i = 0; i < 5000; i++) pool.Apply(One); }) / 5000 * 1e6;
        case "map":
            var items = Enumerable.Range(0, 1_000_000).ToArray();
            return 1_000_000 / Seconds(() => pool.Map(Inc, items));
        case "chunk1":
            var small = Enumerable.Range(0, 20_000).ToArray();
            return 20_000 / Seconds(() => pool.Map(Inc, small, 1));
        default:
            throw new ArgumentException($"unknown first-call scenario '{scenario}'");
    }
}

static int Inc(int x) => x + 1;
static double Area(Shape s) => s switch { Circle c => Math.PI * c.R * c.R, Rect r => r.W * r.H, _ => 0 };
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

static void Print(List<Row> rows, JsonElement? python, bool markdown)
{
    string Num(double v) => v >= 1000 ? v.ToString("N0") : v.ToString("0.0");
    double? PyValue(Row r, string method) =>
        (method == "fork" ? r.Fork : r.Spawn) is { } own ? own
        : r.Key is null || python is null || !python.Value.TryGetProperty(method, out var m) || !m.TryGetProperty(r.Key, out var v) ? null
        : v.GetDouble();
    string Py(Row r, string method) => PyValue(r, method) is { } py ? Num(py) : "-";
    string Ratio(Row r, string method)
    {
        if (PyValue(r, method) is not { } py || double.IsNaN(py)) return "-";
        var better = r.LowerIsBetter ? py / r.Value : r.Value / py;
        return $"{better:0.0}x";
    }

    var headers = new[] { "Benchmark", "Unit", ".NET (this library)", "CPython fork", "CPython spawn", "vs fork", "vs spawn" };
    var lines = rows.Select(r => new[] { r.Name, r.Unit, Num(r.Value), Py(r, "fork"), Py(r, "spawn"), Ratio(r, "fork"), Ratio(r, "spawn") }).ToList();
    BenchTable.Print("Multiprocessing vs CPython multiprocessing (medians; ratios > 1 mean this library is faster)", headers, lines, markdown);
}

/// <summary>A table row; <paramref name="Fork"/> and <paramref name="Spawn"/> carry CPython's figures when measured apart from pool_bench.py.</summary>
internal sealed record Row(string Name, string Unit, bool LowerIsBetter, double Value, string? Key, double? Fork = null, double? Spawn = null);

abstract record Shape;
sealed record Circle(double R) : Shape;
sealed record Rect(double W, double H) : Shape;
