// Image pipeline: synthetic images live in one SharedArray<byte>; worker processes take batches of image
// indices from a shared counter, blur and edge-detect each image into a second shared array and write
// per-image statistics into a third. Nothing is copied between processes: only handles travel.
// Run: dotnet run -c Release --project examples/ImagePipeline [-- images height width workers]
using System.Diagnostics;
using ImagePipeline;
using Multiprocessing;
using Spectre.Console;

var count = args.Length > 0 ? int.Parse(args[0]) : 96;
var height = args.Length > 1 ? int.Parse(args[1]) : 256;
var width = args.Length > 2 ? int.Parse(args[2]) : 256;
var workerCount = args.Length > 3 ? int.Parse(args[3]) : Environment.ProcessorCount;
const int Channels = 3, BatchSize = 4;
var shape = new ImageShape(height, width, Channels);

using var input = SharedArray<byte>.Create(count * shape.Bytes);
using var output = SharedArray<byte>.Create(count * shape.Bytes);
using var stats = SharedArray<ImageStats>.Create(count);
using var nextBatch = SharedValue<int>.Create();
using var finished = SharedValue<int>.Create();
for (var i = 0; i < count; i++) Synthetic.Draw(input.Span.Slice(i * shape.Bytes, shape.Bytes), shape, seed: i);

AnsiConsole.MarkupLine($"[bold]{count}[/] images of {height}x{width}x{Channels} ({input.Length / (1 << 20)} MiB) in shared memory [grey]{input.Name}[/]; {workerCount} worker processes");

// Sequential baseline in this process.
var sequentialOut = new byte[output.Length];
var sequentialStats = new ImageStats[count];
var clock = Stopwatch.StartNew();
for (var i = 0; i < count; i++)
    sequentialStats[i] = Transform.Run(input.Span.Slice(i * shape.Bytes, shape.Bytes), sequentialOut.AsSpan(i * shape.Bytes, shape.Bytes), shape);
var sequential = clock.Elapsed;

// Parallel: each worker claims batches until none are left.
clock.Restart();
var workers = Enumerable.Range(0, workerCount)
    .Select(w => Pipeline.Worker($"image-worker-{w}", input, output, stats, nextBatch, finished, shape, count, BatchSize)).ToList();

AnsiConsole.Progress()
    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
    .Start(ctx =>
    {
        var bar = ctx.AddTask("blur + edges", maxValue: count);
        foreach (var w in workers) w.Start();
        while (workers.Any(w => w.IsAlive))
        {
            bar.Value = finished.Read();
            Thread.Sleep(50);
        }
        bar.Value = finished.Read();
    });
var parallel = clock.Elapsed;

foreach (var w in workers)
    if (w.Exception is not null) throw new InvalidOperationException($"{w.Name} failed", w.Exception);
if (!output.Span.SequenceEqual(sequentialOut)) throw new InvalidOperationException("The workers' output differs from the sequential result.");

// Reduce the per-image statistics.
var all = stats.ToArray();
var table = new Table().AddColumns("", "sequential", $"{workerCount} processes");
table.AddRow("time", $"{sequential.TotalSeconds:0.00} s", $"{parallel.TotalSeconds:0.00} s");
table.AddRow("throughput", $"{count / sequential.TotalSeconds:0.0} images/s", $"{count / parallel.TotalSeconds:0.0} images/s");
table.AddRow("speedup", "1.00x", $"{sequential / parallel:0.00}x");
AnsiConsole.Write(table);
AnsiConsole.MarkupLine($"mean brightness {all.Average(s => s.Mean):0.0}, mean edge fraction {all.Average(s => s.EdgeFraction):P1}, strongest edge {all.Max(s => s.MaxEdge)}");

var png = Path.GetFullPath("imagepipeline.png");
Png.WriteSideBySide(png, input.Span[..shape.Bytes], output.Span[..shape.Bytes], shape);
AnsiConsole.MarkupLine($"before/after of image 0: [link]{png}[/]");

internal static class Pipeline
{
    // A method of its own: lambdas of one scope share a closure, and everything it holds would travel.
    public static WorkerProcess Worker(string name, SharedArray<byte> input, SharedArray<byte> output, SharedArray<ImageStats> stats,
        SharedValue<int> nextBatch, SharedValue<int> finished, ImageShape shape, int count, int batchSize) => new(() =>
    {
        // Claim batches of indices until none are left; the arrays arrive attached, nothing is copied.
        while (true)
        {
            var first = (nextBatch.Add(1) - 1) * batchSize;
            if (first >= count) return;
            for (var i = first; i < Math.Min(first + batchSize, count); i++)
            {
                stats[i] = Transform.Run(input.Span.Slice(i * shape.Bytes, shape.Bytes), output.Span.Slice(i * shape.Bytes, shape.Bytes), shape);
                finished.Add(1);
            }
        }
    }) { Name = name };
}
