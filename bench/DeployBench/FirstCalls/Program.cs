// A consumer app built from a packed package by compare_packages.sh: one first-call figure from a fresh
// process (no warm-up), or a steady-state one after two seconds of the same Map.
//   pool   : ms from this process's start through the first result of its first pool of 2 workers
//   apply  : us per Apply over the first 5,000 calls
//   map    : items/s of the first Map of 1,000,000 ints
//   chunk1 : items/s of the first Map of 20,000 ints with chunk size 1
//   steady : items/s of the best of 5 Maps of 1,000,000 ints after 2 s of the same
using System.Diagnostics;
using System.Globalization;
using Multiprocessing;

var started = Process.GetCurrentProcess().StartTime.ToUniversalTime();
using var pool = new ProcessPool(2);
var watch = Stopwatch.StartNew();
double figure;
switch (args[0])
{
    case "pool":
        if (pool.Apply(static () => 41 + 1) != 42) return 1;
        figure = (DateTime.UtcNow - started).TotalMilliseconds;
        break;
    case "apply":
        for (var i = 0; i < 5000; i++) pool.Apply(One);
        figure = watch.Elapsed.TotalSeconds / 5000 * 1e6;
        break;
    case "map":
        var items = Enumerable.Range(0, 1_000_000).ToArray();
        watch.Restart();
        pool.Map(Inc, items);
        figure = items.Length / watch.Elapsed.TotalSeconds;
        break;
    case "chunk1":
        var small = Enumerable.Range(0, 20_000).ToArray();
        watch.Restart();
        pool.Map(Inc, small, 1);
        figure = small.Length / watch.Elapsed.TotalSeconds;
        break;
    case "steady":
        var many = Enumerable.Range(0, 1_000_000).ToArray();
        while (watch.Elapsed < TimeSpan.FromSeconds(2)) pool.Map(Inc, many);
        var best = double.MaxValue;
        for (var r = 0; r < 5; r++)
        {
            watch.Restart();
            pool.Map(Inc, many);
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        figure = many.Length / best;
        break;
    default:
        Console.Error.WriteLine("usage: FirstCalls pool|apply|map|chunk1|steady");
        return 2;
}
Console.WriteLine(figure.ToString("0.0", CultureInfo.InvariantCulture));
return 0;

static int Inc(int x) => x + 1;
static int One() => 1;
