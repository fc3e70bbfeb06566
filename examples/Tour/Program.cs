// A tour of Multiprocessing: Python's multiprocessing examples, in C#.
// Run it with:  dotnet run --project examples/Tour
using System.Diagnostics;
using Multiprocessing;

Console.WriteLine($"Multiprocessing tour: {Environment.ProcessorCount} cores, parent pid {Environment.ProcessId}");
var startup = Stopwatch.StartNew();
await using var pool = new ProcessPool();
pool.Apply(() => 0); // wait until the workers are up, so the timings below are of the work itself
Console.WriteLine($"A pool of {pool.Processes} worker processes, ready in {startup.ElapsedMilliseconds} ms.");

// 1. Pool.map(is_prime, range(10000, 10100))
Section("Map: which of 10,000..10,099 are prime");
var candidates = Enumerable.Range(10_000, 100).ToArray();
var (primes, parallelTime) = Time(() => pool.Map(Numbers.IsPrime, candidates));
var (sequential, sequentialTime) = Time(() => candidates.Select(Numbers.IsPrime).ToArray());
Check(primes.SequenceEqual(sequential), "Map agrees with a sequential Select");
Console.WriteLine($"  primes: {string.Join(", ", candidates.Where((_, i) => primes[i]))}");
Report(parallelTime, sequentialTime);

// 2. functools.partial(power, exponent=2): a lambda that captures a value travels with it.
Section("A captured value travels with the lambda (Python's functools.partial)");
var exponent = 2;
var squares = pool.Map((int x) => Numbers.Power(x, exponent), Enumerable.Range(0, 10));
Console.WriteLine($"  power(x, {exponent}) for 0..9: {string.Join(", ", squares)}");

// 3. apply_async with a task that throws: the error comes home as its own type.
Section("ApplyAsync: a task that throws");
var good = pool.ApplyAsync((int x) => x * x, 12);
var bad = pool.ApplyAsync((int x) => Numbers.Reciprocal(x), 0);
Console.WriteLine($"  12 * 12 = {await good}");
try
{
    await bad;
}
catch (DivideByZeroException e)
{
    Console.WriteLine($"  the worker threw {e.GetType().Name}: {e.Message}");
    Console.WriteLine($"  its remote stack trace starts at: {e.StackTrace?.Split('\n')[0].Trim()}");
}

// 3b. ProcessPoolExecutor: submit + as_completed is ApplyAsync + Task.WhenEach.
Section("ProcessPoolExecutor idioms: submit, then as_completed");
IProcessPool executor = pool; // code written against IProcessPool runs on any pool
var submitted = Enumerable.Range(0, 8).Select(n => executor.ApplyAsync(Numbers.Power, 2, n)).ToList();
var completed = new List<long>();
await foreach (var done in Task.WhenEach(submitted)) completed.Add(await done);
Check(completed.Order().SequenceEqual(Enumerable.Range(0, 8).Select(n => 1L << n)), $"8 futures, in completion order: {string.Join(", ", completed)}");

// 4. Sum 1,000,000 numbers in batches with imap_unordered.
Section("ImapUnordered: batched sums over 1,000,000 numbers");
var batches = Enumerable.Range(0, 10).Select(i => (Start: i * 100_000L, Count: 100_000)).ToArray();
var (total, batchedTime) = Time(() => pool.ImapUnordered(((long Start, int Count) b) => Numbers.SumOfSquares(b.Start, b.Count), batches).Sum());
var (expected, plainTime) = Time(() => batches.Sum(b => Numbers.SumOfSquares(b.Start, b.Count)));
Check(total == expected, $"sum of squares of 0..999,999 = {total:N0}");
Report(batchedTime, plainTime);

// 5. A CPU-bound job big enough for processes to pay off.
Section("A CPU-bound job: counting primes below 3,000,000 in 60 slices");
var slices = Enumerable.Range(0, 60).Select(i => (Start: i * 50_000, End: (i + 1) * 50_000)).ToArray();
var (counts, cpuParallel) = Time(() => pool.Map(((int Start, int End) s) => Numbers.CountPrimes(s.Start, s.End), slices, chunkSize: 1));
var (countsSeq, cpuSequential) = Time(() => slices.Select(s => Numbers.CountPrimes(s.Start, s.End)).ToArray());
Check(counts.Sum() == countsSeq.Sum(), $"{counts.Sum():N0} primes below 3,000,000");
Report(cpuParallel, cpuSequential);

// 6. A worker that crashes hard does not take the parent down.
Section("A worker that overflows its stack");
try
{
    pool.Apply(() => Numbers.Recurse(0));
}
catch (WorkerCrashedException e)
{
    Console.WriteLine($"  the pool reports it: worker pid {e.ProcessId} died (signal {e.Signal}); the parent lives on");
}
Console.WriteLine($"  and the pool still works: {pool.Apply(() => 6 * 7)}");

// 7. Shared memory: ten processes each write their own slot of one array; nothing is copied.
Section("Shared memory: ten processes write their own index of one SharedArray<double>");
using (var squaresOf = SharedArray<double>.Create(10))
using (var counter = SharedValue<long>.Create(0))
using (var totalLock = new ProcessLock())
{
    var writers = Enumerable.Range(0, 10).Select(i => new WorkerProcess(() =>
    {
        squaresOf[i] = Math.Sqrt(i);                          // the array arrives attached to the same memory
        for (var k = 0; k < 1000; k++)
            using (totalLock.Acquire()) counter.Value += 1;   // a plain read-modify-write, made safe by a futex lock
    })).ToList();
    writers.ForEach(w => w.Start());
    writers.ForEach(w => w.Join());
    Console.WriteLine($"  sqrt(i) written by process i: {string.Join(", ", squaresOf.Span.ToArray().Select(v => v.ToString("0.00")))}");
    Check(counter.Value == 10_000, $"10 processes x 1,000 locked increments = {counter.Value:N0}");
}

// 8. A manager: Python's Manager() with a dict and a lock shared by four processes.
Section("A manager: 4 processes x 1,000 increments under a manager lock");
await using (var manager = await Manager.StartAsync())
{
    var counter = manager.Value(0);
    var guard = manager.Lock();
    var tally = manager.Dictionary<string, int>();
    var workers = Enumerable.Range(0, 4).Select(_ => new WorkerProcess(() =>
    {
        for (var i = 0; i < 1000; i++)
        {
            using (guard.Acquire()) counter.Value = counter.Value + 1;   // lock, read, write: as in Python
            tally.AddOrUpdate("total", 1, (_, n) => n + 1);               // one atomic update in the server
        }
    })).ToList();
    var managerTime = Stopwatch.StartNew();
    workers.ForEach(w => w.Start());
    workers.ForEach(w => w.Join());
    Check(counter.Value == 4000 && tally["total"] == 4000, $"counter = {counter.Value:N0}, atomic tally = {tally["total"]:N0} ({managerTime.ElapsedMilliseconds} ms)");
}

// 8. The seed example: four processes each compute for a task id and report (taskId, result) through a queue.
Section("A queue: four worker processes report (taskId, result)");
using (var results = new ProcessQueue<(int TaskId, long Result)>())
{
    var workers = Enumerable.Range(1, 4).Select(taskId => new WorkerProcess(() =>
    {
        results.Put((taskId, Numbers.SumOfSquares(taskId * 1_000_000L, 1_000_000)));
    }) { Name = $"task-{taskId}" }).ToList();
    workers.ForEach(w => w.Start());
    var collected = Enumerable.Range(0, 4).Select(_ => results.Get()).OrderBy(r => r.TaskId).ToList();
    workers.ForEach(w => w.Join());
    foreach (var (taskId, result) in collected) Console.WriteLine($"  task {taskId}: {result:N0}");
    Check(collected.All(r => r.Result == Numbers.SumOfSquares(r.TaskId * 1_000_000L, 1_000_000)), "every task reported its own result");
}

// 9. A pipeline: a producer process, a consumer process, a JoinableProcessQueue between them, results back on a pipe.
Section("A pipeline: producer -> JoinableProcessQueue -> consumer -> Pipe");
using (var work = new JoinableProcessQueue<int>(maxSize: 100))
{
    var (resultsEnd, consumerEnd) = Pipe.Create<(int N, int Primes)>(duplex: false);
    using (resultsEnd)
    using (consumerEnd)
    {
        var pipelineTime = Stopwatch.StartNew();
        var producer = new WorkerProcess(() =>
        {
            for (var n = 1; n <= 20; n++) work.Put(n * 10_000);
            work.Join();   // returns once the consumer marked every item done
            work.Close();  // then the consumer's Get throws: the end of the work
        }) { Name = "producer" };
        var consumer = new WorkerProcess(() =>
        {
            try
            {
                while (true)
                {
                    var n = work.Get();
                    consumerEnd.Send((n, Numbers.CountPrimes(0, n)));
                    work.TaskDone();
                }
            }
            catch (InvalidOperationException) when (work.IsClosed)
            {
                consumerEnd.Close();
            }
        }) { Name = "consumer" };
        producer.Start();
        consumer.Start();
        var received = new List<(int N, int Primes)>();
        try
        {
            while (true) received.Add(resultsEnd.Receive());
        }
        catch (EndOfStreamException)
        {
            // the consumer closed its end: everything has arrived
        }
        producer.Join();
        consumer.Join();
        Console.WriteLine($"  primes below: {string.Join(", ", received.Take(5).Select(r => $"{r.N:N0} -> {r.Primes:N0}"))}, ...");
        Check(received.Count == 20 && received.Select(r => r.N).SequenceEqual(Enumerable.Range(1, 20).Select(n => n * 10_000)),
            $"20 results in order through the pipe ({pipelineTime.ElapsedMilliseconds} ms)");
    }
}

Console.WriteLine();
Console.WriteLine("Tour complete.");

static void Section(string title)
{
    Console.WriteLine();
    Console.WriteLine($"== {title}");
}

static (T Result, TimeSpan Elapsed) Time<T>(Func<T> work)
{
    var sw = Stopwatch.StartNew();
    var result = work();
    return (result, sw.Elapsed);
}

static void Report(TimeSpan parallel, TimeSpan sequential) =>
    Console.WriteLine($"  pool {parallel.TotalMilliseconds:F1} ms, sequential {sequential.TotalMilliseconds:F1} ms ({sequential / parallel:F2}x)");

static void Check(bool ok, string what)
{
    if (!ok) throw new InvalidOperationException("Check failed: " + what);
    Console.WriteLine($"  ok: {what}");
}

/// <summary>The functions the tour sends to workers: plain static methods, as in Python's examples.</summary>
public static class Numbers
{
    public static bool IsPrime(int n)
    {
        if (n < 2) return false;
        for (var d = 2; (long)d * d <= n; d++)
            if (n % d == 0) return false;
        return true;
    }

    public static long Power(int x, int exponent) => (long)Math.Pow(x, exponent);

    public static int Reciprocal(int x) => 1 / x;

    public static long SumOfSquares(long start, int count)
    {
        long sum = 0;
        for (var i = start; i < start + count; i++) sum += i * i % 1_000_003;
        return sum;
    }

    public static int CountPrimes(int start, int end)
    {
        var count = 0;
        for (var n = start; n < end; n++)
            if (IsPrime(n)) count++;
        return count;
    }

    public static int Recurse(int depth) => depth == int.MaxValue ? depth : Recurse(depth + 1) + 1;
}
