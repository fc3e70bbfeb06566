// Image pipeline: synthetic images live in one SharedArray<byte>; a ProcessPool whose initializer attaches
// to it once per worker blurs and edge-detects batches of images into a second shared array and sends back
// per-image statistics. The pixels are never copied between processes: only names and batch numbers travel.
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
for (var i = 0; i < count; i++) Synthetic.Draw(input.Span.Slice(i * shape.Bytes, shape.Bytes), shape, seed: i);

AnsiConsole.MarkupLine($"[bold]{count}[/] images of {height}x{width}x{Channels} ({input.Length / (1 << 20)} MiB) in shared memory [grey]{input.Name}[/]; {workerCount} worker processes");

// Sequential baseline in this process.
var sequentialOut = new byte[output.Length];
var sequentialStats = new ImageStats[count];
var clock = Stopwatch.StartNew();
for (var i = 0; i < count; i++)
    sequentialStats[i] = Transform.Run(input.Span.Slice(i * shape.Bytes, shape.Bytes), sequentialOut.AsSpan(i * shape.Bytes, shape.Bytes), shape);
var sequential = clock.Elapsed;

// Parallel: as Python's Pool(initializer=attach, initargs=(name,)), each worker attaches to the two
// shared arrays once, by name; then each task is only a batch number, and a few statistics come back.
var inputName = input.Name;
var outputName = output.Name;
await using var pool = new ProcessPool(new ProcessPoolOptions
{
    Processes = workerCount,
    Initializer = () => Attached.Open(inputName, outputName, shape),
});
pool.Apply(() => 0); // start the workers before the clock, as the sequential run had its process already
var batches = Enumerable.Range(0, (count + BatchSize - 1) / BatchSize).ToArray();
ImageStats[][] perBatch = [];
clock.Restart();
await AnsiConsole.Progress()
    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
    .StartAsync(async ctx =>
    {
        var bar = ctx.AddTask("blur + edges", maxValue: count);
        var progress = new Progress<MapProgress>(p => bar.Value = Math.Min(count, p.Completed * BatchSize));
        perBatch = await pool.MapAsync((int batch) => Attached.Process(batch, BatchSize, count), batches, 1, progress, CancellationToken.None);
        bar.Value = count;
    });
var parallel = clock.Elapsed;

if (!output.Span.SequenceEqual(sequentialOut)) throw new InvalidOperationException("The workers' output differs from the sequential result.");
var all = perBatch.SelectMany(b => b).ToArray();
if (!all.SequenceEqual(sequentialStats)) throw new InvalidOperationException("The workers' statistics differ from the sequential ones.");

// Reduce the per-image statistics.
var table = new Table().AddColumns("", "sequential", $"{workerCount} processes");
table.AddRow("time", $"{sequential.TotalSeconds:0.00} s", $"{parallel.TotalSeconds:0.00} s");
table.AddRow("throughput", $"{count / sequential.TotalSeconds:0.0} images/s", $"{count / parallel.TotalSeconds:0.0} images/s");
table.AddRow("speedup", "1.00x", $"{sequential / parallel:0.00}x");
AnsiConsole.Write(table);
AnsiConsole.MarkupLine($"mean brightness {all.Average(s => s.Mean):0.0}, mean edge fraction {all.Average(s => s.EdgeFraction):P1}, strongest edge {all.Max(s => s.MaxEdge)}");

var png = Path.GetFullPath("imagepipeline.png");
Png.WriteSideBySide(png, input.Span[..shape.Bytes], output.Span[..shape.Bytes], shape);
AnsiConsole.MarkupLine($"before/after of image 0: [link]{png}[/]");

/// <summary>What each worker process attaches once, in the pool's initializer, and the task it runs.</summary>
public static class Attached
{
    private static SharedArray<byte>? _input;
    private static SharedArray<byte>? _output;
    private static ImageShape _shape;

    public static void Open(string inputName, string outputName, ImageShape shape)
    {
        _input = SharedArray<byte>.Attach(inputName);
        _output = SharedArray<byte>.Attach(outputName);
        _shape = shape;
    }

    /// <summary>Transforms one batch of images into the shared output; only the statistics travel back.</summary>
    public static ImageStats[] Process(int batch, int batchSize, int count)
    {
        var bytes = _shape.Bytes;
        var first = batch * batchSize;
        var stats = new ImageStats[Math.Min(batchSize, count - first)];
        for (var k = 0; k < stats.Length; k++)
        {
            var i = first + k;
            stats[k] = Transform.Run(_input!.Span.Slice(i * bytes, bytes), _output!.Span.Slice(i * bytes, bytes), _shape);
        }
        return stats;
    }
}
