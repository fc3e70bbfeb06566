// One deployment of a consumer app, built from the packed package by deploy_bench.sh: how long this
// process takes from its own start through the first result of its first pool of 2 workers.
using System.Diagnostics;
using Multiprocessing;

var started = Process.GetCurrentProcess().StartTime.ToUniversalTime();
using (var pool = new ProcessPool(new ProcessPoolOptions { Processes = 2 }))
{
    if (pool.Apply(static () => 41 + 1) != 42) return 1;
}
Console.WriteLine((DateTime.UtcNow - started).TotalMilliseconds.ToString("0", System.Globalization.CultureInfo.InvariantCulture));
return 0;
