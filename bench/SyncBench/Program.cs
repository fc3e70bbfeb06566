// Cross-process synchronization and sharing: this library against CPython's multiprocessing, on this machine.
// Run: dotnet run -c Release --project bench/SyncBench [-- --share-mib 256]
using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using ImagePipeline;
using Multiprocessing;

var shareMib = args.Length >= 2 && args[0] == "--share-mib" ? int.Parse(args[1]) : 256;

Console.WriteLine($"SyncBench: {Environment.ProcessorCount} cores, .NET {Environment.Version}, sharing {shareMib} MiB");
var ours = new Dictionary<string, double>
{
    ["lock_round_trip_us"] = Bench.RoundTripMicroseconds(rounds: 20_000, warmup: 2_000),
    ["lock_uncontended_ns"] = Bench.UncontendedNanoseconds(2_000_000),
    ["share_ms"] = Bench.ShareMilliseconds(shareMib, repeats: 5),
};
var pipeline = Bench.ImagePipeline(images: 96, side: 512, workers: 2, repeats: 9);
var python = BenchSupport.RunCPython("sync_bench.py", "--share-mib", shareMib.ToString());

Console.WriteLine();
Console.WriteLine($"{"measure",-62} {"Multiprocessing",16} {"CPython " + (python?.GetProperty("python").GetString() ?? "n/a"),16} {"ratio",8}");
Row("lock hand-off round trip (2 semaphores, us)", ours["lock_round_trip_us"], Py("lock_round_trip_us"));
Row("uncontended lock acquire+release (ns)", ours["lock_uncontended_ns"], Py("lock_uncontended_ns"));
Row($"share {shareMib} MiB with a running worker vs pickling (ms)", ours["share_ms"], Py("share_pickle_ms"));
Row($"share {shareMib} MiB with a running worker vs shared_memory (ms)", ours["share_ms"], Py("share_shared_memory_ms"));
Console.WriteLine("ratio = CPython time / our time (above 1: we are faster). Sharing = handle travels, worker attaches and reads one byte per 4 KiB page.");

Console.WriteLine();
Console.WriteLine($"image pipeline, 96 images of 512x512x3, 2 workers, steady state (median of 9 after a warm-up; ms):");
Console.WriteLine($"  sequential C#                                  {pipeline.SequentialMs,8:0}");
Console.WriteLine($"  ProcessPool.Map, batches of 2 (the example)    {pipeline.PoolMs,8:0}   speedup {pipeline.SequentialMs / pipeline.PoolMs:0.00}x (goal 1.8x)");
Console.WriteLine($"  ceiling: 2 processes, half each, no messages   {pipeline.CeilingMs,8:0}   speedup {pipeline.SequentialMs / pipeline.CeilingMs:0.00}x (what these 2 cores deliver)");

double? Py(string key) => python is { } p && p.TryGetProperty(key, out var v) ? v.GetDouble() : null;

static void Row(string what, double ours, double? theirs) =>
    Console.WriteLine($"{what,-62} {ours,16:0.###} {(theirs is double t ? t.ToString("0.###") : "n/a"),16} {(theirs is double r ? (r / ours).ToString("0.00") + "x" : ""),8}");

internal static class Bench
{
    public static double RoundTripMicroseconds(int rounds, int warmup)
    {
        using var ping = new ProcessSemaphore(0);
        using var pong = new ProcessSemaphore(0);
        var total = rounds + warmup;
        var partner = new WorkerProcess(() =>
        {
            for (var i = 0; i < total; i++)
            {
                ping.Acquire();
                pong.Release();
            }
        });
        partner.Start();
        for (var i = 0; i < warmup; i++) { ping.Release(); pong.Acquire(); }
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < rounds; i++) { ping.Release(); pong.Acquire(); }
        var us = clock.Elapsed.TotalMicroseconds / rounds;
        BenchSupport.Check(partner);
        return us;
    }

    public static double UncontendedNanoseconds(int n)
    {
        using var gate = new ProcessLock();
        for (var i = 0; i < 10_000; i++) { gate.Acquire(); gate.Release(); }
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < n; i++) { gate.Acquire(); gate.Release(); }
        return clock.Elapsed.TotalNanoseconds / n;
    }

    /// <summary>
    /// A worker already running waits for a handle in a small mailbox; the parent serializes the array's
    /// handle (as it would travel as an argument), the worker deserializes it (attaching), reads one byte per
    /// page and answers. Median of <paramref name="repeats"/>.
    /// </summary>
    public static double ShareMilliseconds(int mib, int repeats)
    {
        using var data = SharedArray<byte>.Create(mib * 1024 * 1024);
        for (var i = 0; i < data.Length; i++) data[i] = (byte)i;
        using var mailbox = SharedArray<byte>.Create(4096);
        using var request = new ProcessSemaphore(0);
        using var reply = new ProcessSemaphore(0);
        using var answer = SharedValue<long>.Create();
        var worker = new WorkerProcess(() =>
        {
            var serializer = new MessagePackObjectSerializer();
            while (true)
            {
                request.Acquire();
                var length = BitConverter.ToInt32(mailbox.Span[..4]);
                if (length == 0) return;
                using var received = serializer.Deserialize<SharedArray<byte>>(mailbox.Span.Slice(4, length).ToArray())!;
                long sum = 0;
                var span = received.Span;
                for (var i = 0; i < span.Length; i += 4096) sum += span[i];
                answer.Value = sum;
                reply.Release();
            }
        });
        worker.Start();
        var serializer = new MessagePackObjectSerializer();
        var times = new List<double>();
        for (var r = 0; r < repeats; r++)
        {
            var clock = Stopwatch.StartNew();
            var buffer = new ArrayBufferWriter<byte>();
            serializer.Serialize(buffer, data);
            BitConverter.TryWriteBytes(mailbox.Span[..4], buffer.WrittenCount);
            buffer.WrittenSpan.CopyTo(mailbox.Span[4..]);
            request.Release();
            reply.Acquire();
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        BitConverter.TryWriteBytes(mailbox.Span[..4], 0);
        request.Release();
        BenchSupport.Check(worker);
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>
    /// The examples/ImagePipeline workload: sequential in this process, through a pool of
    /// <paramref name="workers"/> whose initializer attaches to the shared arrays, and, as the ceiling the machine
    /// allows, the same number of already running processes that each transform their share of the images
    /// with no messages at all (released together by an event, timed until the last one is done). Every side runs
    /// for two seconds before the measured repeats, so that its code is fully tiered up; the repeats alternate.
    /// The example itself reports a first, cold run instead.
    /// </summary>
    public static (double SequentialMs, double PoolMs, double CeilingMs) ImagePipeline(int images, int side, int workers, int repeats)
    {
        const int BatchSize = 2;
        var shape = new ImageShape(side, side, 3);
        using var input = SharedArray<byte>.Create(images * shape.Bytes);
        using var output = SharedArray<byte>.Create(images * shape.Bytes);
        for (var i = 0; i < images; i++) Synthetic.Draw(input.Span.Slice(i * shape.Bytes, shape.Bytes), shape, seed: i);
        var sequentialOut = new byte[output.Length];
        sequentialOut.AsSpan().Fill(1);
        output.Span.Fill(1);
        var inputName = input.Name;
        var outputName = output.Name;
        using var pool = new ProcessPool(new ProcessPoolOptions { Processes = workers, Initializer = () => Attached.Open(inputName, outputName, shape) });
        var batches = Enumerable.Range(0, (images + BatchSize - 1) / BatchSize).ToArray();

        // The ceiling: each process loops over its own slice whenever the gate opens; a barrier marks the end.
        using var go = new ProcessSemaphore(0);
        using var done = new ProcessSemaphore(0);
        using var stop = SharedValue<int>.Create();
        var share = (images + workers - 1) / workers;
        var loopers = Enumerable.Range(0, workers).Select(w => new WorkerProcess(() =>
        {
            Attached.Open(inputName, outputName, shape);
            while (true)
            {
                go.Acquire();
                if (stop.Value != 0) return;
                for (var b = w * share / BatchSize; b < Math.Min(images, (w + 1) * share) / BatchSize; b++) Attached.Process(b, BatchSize, images);
                done.Release();
            }
        })).ToList();
        loopers.ForEach(p => p.Start());

        double Sequential()
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < images; i++)
                Transform.Run(input.Span.Slice(i * shape.Bytes, shape.Bytes), sequentialOut.AsSpan(i * shape.Bytes, shape.Bytes), shape);
            return clock.Elapsed.TotalMilliseconds;
        }
        double Pool()
        {
            var clock = Stopwatch.StartNew();
            pool.Map((int batch) => Attached.Process(batch, BatchSize, images), batches, 1);
            return clock.Elapsed.TotalMilliseconds;
        }
        double Ceiling()
        {
            var clock = Stopwatch.StartNew();
            go.Release(workers);
            for (var w = 0; w < workers; w++)
                if (!done.TryAcquire(TimeSpan.FromMinutes(1))) throw new TimeoutException("A ceiling process did not finish its share within a minute.");
            return clock.Elapsed.TotalMilliseconds;
        }

        var measures = new Func<double>[] { Sequential, Pool, Ceiling };
        foreach (var measure in measures)
            for (var warm = Stopwatch.StartNew(); warm.Elapsed < TimeSpan.FromSeconds(2);) measure();
        var times = measures.Select(_ => new List<double>()).ToArray();
        for (var r = 0; r < repeats; r++)
            for (var m = 0; m < measures.Length; m++) times[m].Add(measures[m]());
        stop.Value = 1;
        go.Release(workers);
        loopers.ForEach(BenchSupport.Check);
        if (!output.Span.SequenceEqual(sequentialOut)) throw new InvalidOperationException("The workers' output differs from the sequential result.");
        var medians = times.Select(t => t.Order().ElementAt(t.Count / 2)).ToArray();
        return (medians[0], medians[1], medians[2]);
    }
}
