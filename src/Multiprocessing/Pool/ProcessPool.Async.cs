namespace Multiprocessing;

// Async worker functions: pool.Map(async x => ...), ApplyAsync(async () => ...). The worker awaits each call,
// and what travels back is the awaited value or exception, never the task.
public sealed partial class ProcessPool
{
    /// <summary>
    /// Map with an async function: each worker awaits <paramref name="func"/> per item (one item at a time per
    /// worker, as with a plain function) and the results are the awaited values, in input order.
    /// </summary>
    public TResult[] Map<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize = null) =>
        MapCore<T, TResult>(func, items, chunkSize, null, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Map with an async function, reporting progress as chunks complete.</summary>
    public TResult[] Map<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress) =>
        MapCore<T, TResult>(func, items, chunkSize, progress, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>The asynchronous Map with an async function; the workers await it.</summary>
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize = null, CancellationToken cancellationToken = default) =>
        MapCore<T, TResult>(func, items, chunkSize, null, cancellationToken);

    /// <summary>The asynchronous Map with an async function, reporting progress as chunks complete.</summary>
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken) =>
        MapCore<T, TResult>(func, items, chunkSize, progress, cancellationToken);

    /// <summary>The lazy, ordered Map with an async function; the workers await it.</summary>
    public IEnumerable<TResult> Imap<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1) =>
        Stream<T, TResult>(func, items, chunkSize, ordered: true);

    /// <summary>The lazy Map in completion order with an async function; the workers await it.</summary>
    public IEnumerable<TResult> ImapUnordered<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1) =>
        Stream<T, TResult>(func, items, chunkSize, ordered: false);

    /// <summary>The asynchronous lazy, ordered Map with an async function; the workers await it.</summary>
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) =>
        StreamAsync<T, TResult>(func, items, chunkSize, ordered: true, cancellationToken);

    /// <summary>The asynchronous lazy Map in completion order with an async function; the workers await it.</summary>
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) =>
        StreamAsync<T, TResult>(func, items, chunkSize, ordered: false, cancellationToken);

    /// <summary>Runs the async <paramref name="func"/> in a worker, which awaits it; returns the awaited value.</summary>
    public TResult Apply<TResult>(Func<Task<TResult>> func) => ApplyAsync(func).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/>(<paramref name="arg1"/>) in a worker, which awaits it.</summary>
    public TResult Apply<T1, TResult>(Func<T1, Task<TResult>> func, T1 arg1) => ApplyAsync(func, arg1).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/> with two arguments in a worker, which awaits it.</summary>
    public TResult Apply<T1, T2, TResult>(Func<T1, T2, Task<TResult>> func, T1 arg1, T2 arg2) => ApplyAsync(func, arg1, arg2).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/> with three arguments in a worker, which awaits it.</summary>
    public TResult Apply<T1, T2, T3, TResult>(Func<T1, T2, T3, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3) => ApplyAsync(func, arg1, arg2, arg3).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/> with four arguments in a worker, which awaits it.</summary>
    public TResult Apply<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => ApplyAsync(func, arg1, arg2, arg3, arg4).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/> in a worker and waits until the worker has awaited it.</summary>
    public void Apply(Func<Task> func) => ApplyAsync(func).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/>(<paramref name="arg1"/>) in a worker and waits until the worker has awaited it.</summary>
    public void Apply<T1>(Func<T1, Task> func, T1 arg1) => ApplyAsync(func, arg1).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/> with two arguments in a worker and waits until the worker has awaited it.</summary>
    public void Apply<T1, T2>(Func<T1, T2, Task> func, T1 arg1, T2 arg2) => ApplyAsync(func, arg1, arg2).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/> with three arguments in a worker and waits until the worker has awaited it.</summary>
    public void Apply<T1, T2, T3>(Func<T1, T2, T3, Task> func, T1 arg1, T2 arg2, T3 arg3) => ApplyAsync(func, arg1, arg2, arg3).GetAwaiter().GetResult();
    /// <summary>Runs the async <paramref name="func"/> with four arguments in a worker and waits until the worker has awaited it.</summary>
    public void Apply<T1, T2, T3, T4>(Func<T1, T2, T3, T4, Task> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => ApplyAsync(func, arg1, arg2, arg3, arg4).GetAwaiter().GetResult();

    /// <summary>Runs the async <paramref name="func"/> in a worker, which awaits it; completes with the awaited value or exception.</summary>
    public Task<TResult> ApplyAsync<TResult>(Func<Task<TResult>> func, CancellationToken cancellationToken = default) => ApplyCore<bool, TResult>(func, false, cancellationToken);
    /// <summary>Runs the async <paramref name="func"/>(<paramref name="arg1"/>) in a worker, which awaits it.</summary>
    public Task<TResult> ApplyAsync<T1, TResult>(Func<T1, Task<TResult>> func, T1 arg1, CancellationToken cancellationToken = default) => ApplyCore<T1, TResult>(func, arg1, cancellationToken);
    /// <summary>Runs the async <paramref name="func"/> with two arguments in a worker, which awaits it.</summary>
    public Task<TResult> ApplyAsync<T1, T2, TResult>(Func<T1, T2, Task<TResult>> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2), TResult>(func, (arg1, arg2), cancellationToken);
    /// <summary>Runs the async <paramref name="func"/> with three arguments in a worker, which awaits it.</summary>
    public Task<TResult> ApplyAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3), TResult>(func, (arg1, arg2, arg3), cancellationToken);
    /// <summary>Runs the async <paramref name="func"/> with four arguments in a worker, which awaits it.</summary>
    public Task<TResult> ApplyAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3, T4), TResult>(func, (arg1, arg2, arg3, arg4), cancellationToken);
    /// <summary>Runs the async <paramref name="func"/> in a worker, which awaits it.</summary>
    public Task ApplyAsync(Func<Task> func, CancellationToken cancellationToken = default) => ApplyCore<bool, bool>(func, false, cancellationToken);
    /// <summary>Runs the async <paramref name="func"/>(<paramref name="arg1"/>) in a worker, which awaits it.</summary>
    public Task ApplyAsync<T1>(Func<T1, Task> func, T1 arg1, CancellationToken cancellationToken = default) => ApplyCore<T1, bool>(func, arg1, cancellationToken);
    /// <summary>Runs the async <paramref name="func"/> with two arguments in a worker, which awaits it.</summary>
    public Task ApplyAsync<T1, T2>(Func<T1, T2, Task> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2), bool>(func, (arg1, arg2), cancellationToken);
    /// <summary>Runs the async <paramref name="func"/> with three arguments in a worker, which awaits it.</summary>
    public Task ApplyAsync<T1, T2, T3>(Func<T1, T2, T3, Task> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3), bool>(func, (arg1, arg2, arg3), cancellationToken);
    /// <summary>Runs the async <paramref name="func"/> with four arguments in a worker, which awaits it.</summary>
    public Task ApplyAsync<T1, T2, T3, T4>(Func<T1, T2, T3, T4, Task> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3, T4), bool>(func, (arg1, arg2, arg3, arg4), cancellationToken);
}
