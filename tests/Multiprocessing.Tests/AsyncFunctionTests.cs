namespace Multiprocessing.Tests;

/// <summary>
/// Async functions run in workers: the worker awaits each call, and what travels back is the awaited value or
/// exception (an async lambda's task cannot travel, and a WorkerProcess must not end at the first await).
/// </summary>
public class AsyncFunctionTests
{
    private static readonly TimeSpan Patience = TestSupport.Patience;

    private static async Task<int> DoubleLater(int x)
    {
        await Task.Delay(1);
        return x * 2;
    }

    [Fact]
    public async Task Map_Imap_and_ImapUnordered_await_async_functions()
    {
        await using var pool = new ProcessPool(2);
        var items = Enumerable.Range(0, 60).ToArray();
        var doubled = items.Select(x => x * 2).ToArray();

        Assert.Equal(doubled, pool.Map(async (int x) => { await Task.Yield(); return x * 2; }, items));
        Assert.Equal(doubled, await pool.MapAsync(DoubleLater, items, chunkSize: 7).WaitAsync(Patience));
        Assert.Equal(doubled, pool.Imap(DoubleLater, items, chunkSize: 5));
        Assert.Equal(doubled, pool.ImapUnordered(DoubleLater, items).Order());
        var streamed = new List<int>();
        await foreach (var r in pool.ImapAsync(DoubleLater, items)) streamed.Add(r);
        Assert.Equal(doubled, streamed);
    }

    [Fact]
    public async Task ApplyAsync_returns_the_awaited_value_and_rethrows_the_awaited_exception()
    {
        await using var pool = new ProcessPool(1);
        Assert.Equal(Environment.ProcessId, await pool.ApplyAsync(async () => { await Task.Delay(5); return WorkerProcess.Parent!.Pid; }).WaitAsync(Patience));
        Assert.Equal(7, await pool.ApplyAsync(async (int a, int b) => { await Task.Delay(5); return a + b; }, 3, 4).WaitAsync(Patience));
        Assert.Equal(12, pool.Apply(DoubleLater, 6));

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => pool.ApplyAsync(async () =>
        {
            await Task.Delay(5);
            throw new InvalidOperationException("thrown after an await");
#pragma warning disable CS0162 // the lambda must return int for the overload under test
            return 0;
#pragma warning restore CS0162
        }).WaitAsync(Patience));
        Assert.Equal("thrown after an await", e.Message);

        // A Task with no value: the call ends when the worker's await does.
        var path = TestSupport.TempFile();
        await pool.ApplyAsync(async () => { await Task.Delay(50); await File.WriteAllTextAsync(path, "written"); }).WaitAsync(Patience);
        Assert.Equal("written", File.ReadAllText(path));
        File.Delete(path);
    }

    [Fact]
    public async Task The_calls_cancellation_token_reaches_the_code_after_an_await()
    {
        await using var pool = new ProcessPool(1);
        Assert.True(await pool.ApplyAsync(async () =>
        {
            await Task.Delay(5).ConfigureAwait(false); // continues on a thread-pool thread
            return WorkerProcess.CancellationToken.CanBeCanceled;
        }).WaitAsync(Patience));

        using var cts = new CancellationTokenSource();
        var running = pool.ApplyAsync(async () =>
        {
            await Task.Delay(TimeSpan.FromMinutes(5), WorkerProcess.CancellationToken);
            return 0;
        }, cts.Token);
        await Task.Delay(300);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.WaitAsync(Patience));
        Assert.Equal(5, await pool.ApplyAsync(async () => { await Task.Yield(); return 5; }).WaitAsync(Patience)); // the worker is still there
    }

    [Fact]
    public void A_WorkerProcess_with_an_async_target_runs_until_its_task_ends()
    {
        var path = TestSupport.TempFile();
        var p = new WorkerProcess(async () =>
        {
            await Task.Delay(200);
            await File.WriteAllTextAsync(path, "after the await");
        });
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Equal(0, p.ExitCode);
        Assert.Equal("after the await", File.ReadAllText(path));
        File.Delete(path);

        var failing = new WorkerProcess(async () =>
        {
            await Task.Delay(10);
            throw new InvalidOperationException("async failure");
        });
        failing.Start();
        TestSupport.JoinOrFail(failing);
        Assert.Equal(1, failing.ExitCode);
        Assert.Equal("async failure", failing.Exception?.Message);
    }

    private static ValueTask<int> Quick(int x) => new(x + 1);

    [Fact]
    public async Task A_ValueTask_function_is_refused_at_the_call_with_the_wrapping_that_works()
    {
        await using var pool = new ProcessPool(1);
        var e = Assert.Throws<ArgumentException>(() => pool.Map(Quick, [1, 2]));
        Assert.StartsWith("The function Quick returns a ValueTask<Int32>; the pool awaits functions that return a Task.", e.Message);
        Assert.Equal([2, 3], pool.Map(async (int x) => await Quick(x), [1, 2]));
    }
}
