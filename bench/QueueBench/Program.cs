// Queues and pipes between processes: this library against CPython's multiprocessing, on this machine.
// Run: dotnet run -c Release --project bench/QueueBench
using System.Diagnostics;
using System.Text.Json;
using Multiprocessing;

const int SmallItems = 4_000_000, PythonSmallItems = 200_000, Rounds = 20_000, Mib = 1_000, PythonMib = 200;

Console.WriteLine($"QueueBench: {Environment.ProcessorCount} cores, .NET {Environment.Version}");
var ours = new Dictionary<string, double>
{
    ["one_to_one_msgs_s"] = Bench.OneToOne(SmallItems),
    ["two_to_two_msgs_s"] = Bench.TwoToTwo(SmallItems / 2),
    ["ping_pong_us"] = Bench.PingPong(Rounds, warmup: 2_000),
    ["big_items_mib_s"] = Bench.BigItems(Mib),
};
var python = BenchSupport.RunCPython("queue_bench.py", "--small", PythonSmallItems.ToString(), "--rounds", Rounds.ToString(), "--mib", PythonMib.ToString());

Console.WriteLine();
Console.WriteLine($"{"measure",-52} {"Multiprocessing",16} {"CPython " + (python?.GetProperty("python").GetString() ?? "n/a"),16} {"ratio",8}");
Row("1 producer -> 1 consumer process, int items (msgs/s)", ours["one_to_one_msgs_s"], Py("one_to_one_msgs_s"), higherIsBetter: true);
Row("2 producers -> 2 consumers, int items (msgs/s)", ours["two_to_two_msgs_s"], Py("two_to_two_msgs_s"), higherIsBetter: true);
Row("Pipe ping-pong round trip (us)", ours["ping_pong_us"], Py("ping_pong_us"), higherIsBetter: false);
Row("1 producer -> 1 consumer, 1 MiB byte[] items (MiB/s)", ours["big_items_mib_s"], Py("big_items_mib_s"), higherIsBetter: true);
Console.WriteLine("ratio: how many times better we are (above 1: faster). CPython: Queue/Pipe of the fork context.");

double? Py(string key) => python is { } p && p.TryGetProperty(key, out var v) ? v.GetDouble() : null;

static void Row(string what, double ours, double? theirs, bool higherIsBetter)
{
    var ratio = theirs is double t ? (higherIsBetter ? ours / t : t / ours).ToString("0.0") + "x" : "";
    Console.WriteLine($"{what,-52} {ours,16:#,0.0} {(theirs is double r ? r.ToString("#,0.0") : "n/a"),16} {ratio,8}");
}

internal static class Bench
{
    /// <summary>A producer process puts <paramref name="n"/> ints; this process gets them. Timed from the go signal.</summary>
    public static double OneToOne(int n)
    {
        using var queue = new ProcessQueue<int>();
        using var go = new ProcessEvent();
        var producer = new WorkerProcess(() =>
        {
            go.Wait();
            for (var i = 0; i < n; i++) queue.Put(i);
        });
        producer.Start();
        Thread.Sleep(300);
        var clock = Stopwatch.StartNew();
        go.Set();
        for (var i = 0; i < n; i++)
            if (queue.Get() != i) throw new InvalidOperationException("out of order");
        var rate = n / clock.Elapsed.TotalSeconds;
        BenchSupport.Check(producer);
        return rate;
    }

    /// <summary>Two producer processes, two consumer processes (each stops at a sentinel); timed from go to the last count.</summary>
    public static double TwoToTwo(int perProducer)
    {
        using var queue = new ProcessQueue<int>();
        using var counts = new ProcessQueue<int>();
        using var go = new ProcessEvent();
        var producers = Enumerable.Range(0, 2).Select(_ => new WorkerProcess(() =>
        {
            go.Wait();
            for (var i = 0; i < perProducer; i++) queue.Put(i);
        })).ToArray();
        var consumers = Enumerable.Range(0, 2).Select(_ => new WorkerProcess(() =>
        {
            var count = 0;
            while (queue.Get() >= 0) count++;
            counts.Put(count);
        })).ToArray();
        foreach (var w in producers.Concat(consumers)) w.Start();
        Thread.Sleep(500);
        var clock = Stopwatch.StartNew();
        go.Set();
        foreach (var p in producers) BenchSupport.Check(p);
        queue.Put(-1);
        queue.Put(-1);
        var total = counts.Get() + counts.Get();
        var rate = total / clock.Elapsed.TotalSeconds;
        foreach (var c in consumers) BenchSupport.Check(c);
        if (total != 2 * perProducer) throw new InvalidOperationException($"lost items: {total}");
        return rate;
    }

    public static double PingPong(int rounds, int warmup)
    {
        var (left, right) = Pipe.Create<int>();
        using (left)
        using (right)
        {
            var total = rounds + warmup;
            var echo = new WorkerProcess(() =>
            {
                for (var i = 0; i < total; i++) right.Send(right.Receive());
            });
            echo.Start();
            for (var i = 0; i < warmup; i++) { left.Send(i); left.Receive(); }
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < rounds; i++) { left.Send(i); left.Receive(); }
            var us = clock.Elapsed.TotalMicroseconds / rounds;
            BenchSupport.Check(echo);
            return us;
        }
    }

    public static double BigItems(int count)
    {
        using var queue = new ProcessQueue<byte[]>(maxSize: 8, ringBytes: 16 << 20); // bounded: a fast producer waits rather than spilling
        using var go = new ProcessEvent();
        var producer = new WorkerProcess(() =>
        {
            var payload = new byte[1 << 20];
            go.Wait();
            for (var i = 0; i < count; i++) queue.Put(payload);
        });
        producer.Start();
        Thread.Sleep(300);
        var clock = Stopwatch.StartNew();
        go.Set();
        for (var i = 0; i < count; i++)
            if (queue.Get().Length != 1 << 20) throw new InvalidOperationException("torn item");
        var rate = count / clock.Elapsed.TotalSeconds;
        BenchSupport.Check(producer);
        return rate;
    }

}
