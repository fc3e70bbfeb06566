// Cross-process synchronization and sharing: this library against CPython's multiprocessing, on this machine.
// Run: dotnet run -c Release --project bench/SyncBench [-- --share-mib 256]
using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using Multiprocessing;

var shareMib = args.Length >= 2 && args[0] == "--share-mib" ? int.Parse(args[1]) : 256;

Console.WriteLine($"SyncBench: {Environment.ProcessorCount} cores, .NET {Environment.Version}, sharing {shareMib} MiB");
var ours = new Dictionary<string, double>
{
    ["lock_round_trip_us"] = Bench.RoundTripMicroseconds(rounds: 20_000, warmup: 2_000),
    ["lock_uncontended_ns"] = Bench.UncontendedNanoseconds(2_000_000),
    ["share_ms"] = Bench.ShareMilliseconds(shareMib, repeats: 5),
};
var python = BenchSupport.RunCPython("sync_bench.py", "--share-mib", shareMib.ToString());

Console.WriteLine();
Console.WriteLine($"{"measure",-62} {"Multiprocessing",16} {"CPython " + (python?.GetProperty("python").GetString() ?? "n/a"),16} {"ratio",8}");
Row("lock hand-off round trip (2 semaphores, us)", ours["lock_round_trip_us"], Py("lock_round_trip_us"));
Row("uncontended lock acquire+release (ns)", ours["lock_uncontended_ns"], Py("lock_uncontended_ns"));
Row($"share {shareMib} MiB with a running worker vs pickling (ms)", ours["share_ms"], Py("share_pickle_ms"));
Row($"share {shareMib} MiB with a running worker vs shared_memory (ms)", ours["share_ms"], Py("share_shared_memory_ms"));
Console.WriteLine("ratio = CPython time / our time (above 1: we are faster). Sharing = handle travels, worker attaches and reads one byte per 4 KiB page.");

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

}
