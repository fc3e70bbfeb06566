// Image pipeline: synthetic images live in one SharedArray<byte>; a ProcessPool whose initializer attaches
// to it once per worker blurs and edge-detects batches of images into a second shared array and sends back
// per-image statistics. The pixels are never copied between processes: only names and batch numbers travel.
// Run: dotnet run -c Release --project examples/ImagePipeline [-- images height width workers]
using System.Diagnostics;
using ImagePipeline;
using Multiprocessing;
using Spectre.Console;

var count = args.Length > 0 ? int.Parse(args[0]) : 96;
var height = args.Length > 1 ? int.Parse(args[1]) : 512;
var width = args.Length > 2 ? int.Parse(args[2]) : 512;
var workerCount = args.Length > 3 ? int.Parse(args[3]) : Environment.ProcessorCount;
const int Channels = 3, BatchSize = 2;
var shape = new ImageShape(height, width, Channels);

using var input = SharedArray<byte>.Create(count * shape.Bytes);
using var output = SharedArray<byte>.Create(count * shape.Bytes);
for (var i = 0; i < count; i++) Synthetic.Draw(input.Span.Slice(i * shape.Bytes, shape.Bytes), shape, seed: i);

AnsiConsole.MarkupLine($"[bold]{count}[/] images of {height}x{width}x{Channels} ({input.Length / (1 << 20)} MiB) in shared memory [grey]{input.Name}[/]; {workerCount} worker processes");

// Sequential baseline in this process. Each side runs twice: the first run includes the JIT compiling the
// transform (in every process that runs it), the second shows what a long-running pipeline gets.
var sequentialOut = new byte[output.Length];
// Touch both outputs before any clock starts, so that neither run pays for the first write to fresh pages.
sequentialOut.AsSpan().Fill(1);
output.Span.Fill(1);
var sequentialStats = new ImageStats[count];
TimeSpan Sequential()
{
    var clock = Stopwatch.StartNew();
    for (var i = 0; i < count; i++)
        sequentialStats[i] = Transform.Run(input.Span.Slice(i * shape.Bytes, shape.Bytes), sequentialOut.AsSpan(i * shape.Bytes, shape.Bytes), shape);
    return clock.Elapsed;
}
TimeSpan[] sequential = [Sequential(), Sequential()];

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
var parallel = new TimeSpan[2];
await AnsiConsole.Progress()
    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
    .StartAsync(async ctx =>
    {
        for (var run = 0; run < parallel.Length; run++)
        {
            var bar = ctx.AddTask(run == 0 ? "blur + edges, first run" : "blur + edges, second run", maxValue: count);
            var progress = new Progress<MapProgress>(p => bar.Value = Math.Min(count, p.Completed * BatchSize));
            var clock = Stopwatch.StartNew();
            perBatch = await pool.MapAsync((int batch) => Attached.Process(batch, BatchSize, count), batches, 1, progress, CancellationToken.None);
            parallel[run] = clock.Elapsed;
            bar.Value = count;
        }
    });

if (!output.Span.SequenceEqual(sequentialOut)) throw new InvalidOperationException("The workers' output differs from the sequential result.");
var all = perBatch.SelectMany(b => b).ToArray();
if (!all.SequenceEqual(sequentialStats)) throw new InvalidOperationException("The workers' statistics differ from the sequential ones.");

// Reduce the per-image statistics.
var table = new Table().AddColumns("", "sequential", $"{workerCount} processes", "speedup");
string[] runs = ["first (JIT warm-up)", "second"];
for (var run = 0; run < runs.Length; run++)
    table.AddRow(runs[run], $"{sequential[run].TotalSeconds:0.00} s, {count / sequential[run].TotalSeconds:0} images/s", $"{parallel[run].TotalSeconds:0.00} s, {count / parallel[run].TotalSeconds:0} images/s", $"{sequential[run] / parallel[run]:0.00}x");
AnsiConsole.Write(table);
AnsiConsole.MarkupLine("[grey]Single runs vary. Steady state (warmed up, median of nine):[/]");
AnsiConsole.MarkupLine("[grey]  dotnet run -c Release --project bench/SyncBench[/]");
AnsiConsole.MarkupLine($"mean brightness {all.Average(s => s.Mean):0.0}, mean edge fraction {all.Average(s => s.EdgeFraction):P1}, strongest edge {all.Max(s => s.MaxEdge)}");

var png = Path.GetFullPath("imagepipeline.png");
Png.WriteSideBySide(png, input.Span[..shape.Bytes], output.Span[..shape.Bytes], shape);
AnsiConsole.MarkupLine($"before/after of image 0: [link]{png}[/]");
