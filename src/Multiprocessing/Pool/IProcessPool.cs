namespace Multiprocessing;

/// <summary>
/// What every pool offers, whatever runs its calls: <see cref="ProcessPool"/> runs them in worker processes of this
/// machine. Code written against <see cref="IProcessPool"/> takes any pool, so it can move to another kind (a pool
/// over a cluster) without change.
/// </summary>
public interface IProcessPool : IDisposable, IAsyncDisposable
{
    /// <summary>The number of worker processes.</summary>
    int Processes { get; }

    /// <summary>
    /// Map with an async function: each worker awaits <paramref name="func"/> per item (one item at a time per
    /// worker, as with a plain function) and the results are the awaited values, in input order.
    /// </summary>
    TResult[] Map<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize = null);

    /// <summary>Map with an async function, reporting progress as chunks complete.</summary>
    TResult[] Map<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress);

    /// <summary>
    /// Applies <paramref name="func"/> to every item in worker processes and returns the results in
    /// input order. The input is split into chunks of <paramref name="chunkSize"/> items (default:
    /// items / (4 x workers), rounded up, as in Python). Throws the first failure.
    /// </summary>
    TResult[] Map<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize = null);

    /// <summary>As <see cref="ProcessPool.Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?)"/>, reporting progress as chunks complete.</summary>
    TResult[] Map<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress);

    /// <summary>The asynchronous Map with an async function; the workers await it.</summary>
    Task<TResult[]> MapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize = null, CancellationToken cancellationToken = default);

    /// <summary>The asynchronous Map with an async function, reporting progress as chunks complete.</summary>
    Task<TResult[]> MapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken);

    /// <summary>
    /// The asynchronous <see cref="ProcessPool.Map{T, TResult}(Func{T, TResult}, IEnumerable{T}, int?)"/>. Cancelling
    /// drops the queued chunks at once and cancels the running ones (see <see cref="ProcessPoolOptions.CancellationGracePeriod"/>).
    /// </summary>
    Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize = null, CancellationToken cancellationToken = default);

    /// <summary>The asynchronous Map, reporting progress as chunks complete.</summary>
    Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken);

    /// <summary>The lazy, ordered Map with an async function; the workers await it.</summary>
    IEnumerable<TResult> Imap<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1);

    /// <summary>
    /// A lazy, ordered Map: results come back in input order as they are ready. The input is read
    /// lazily with a bounded read-ahead, so an endless sequence with a bounded consumer works.
    /// On a failure, the results before it are yielded and then the failure is thrown.
    /// </summary>
    IEnumerable<TResult> Imap<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1);

    /// <summary>The lazy Map in completion order with an async function; the workers await it.</summary>
    IEnumerable<TResult> ImapUnordered<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1);

    /// <summary>Like <see cref="ProcessPool.Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int)"/> but yields results in the order they complete.</summary>
    IEnumerable<TResult> ImapUnordered<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1);

    /// <summary>The asynchronous lazy, ordered Map with an async function; the workers await it.</summary>
    IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default);

    /// <summary>The asynchronous <see cref="ProcessPool.Imap{T, TResult}(Func{T, TResult}, IEnumerable{T}, int)"/>.</summary>
    IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default);

    /// <summary>The asynchronous lazy Map in completion order with an async function; the workers await it.</summary>
    IAsyncEnumerable<TResult> ImapUnorderedAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default);

    /// <summary>The asynchronous <see cref="ProcessPool.ImapUnordered{T, TResult}(Func{T, TResult}, IEnumerable{T}, int)"/>.</summary>
    IAsyncEnumerable<TResult> ImapUnorderedAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default);

    /// <summary>Like Python's <c>starmap</c>: each item is a tuple of the function's two arguments.</summary>
    TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> func, IEnumerable<(T1, T2)> items, int? chunkSize = null);

    /// <summary>Like Python's <c>starmap</c>: each item is a tuple of the function's three arguments.</summary>
    TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null);

    /// <summary>The asynchronous two-argument <c>starmap</c>.</summary>
    Task<TResult[]> StarmapAsync<T1, T2, TResult>(Func<T1, T2, TResult> func, IEnumerable<(T1, T2)> items, int? chunkSize = null, CancellationToken cancellationToken = default);

    /// <summary>The asynchronous three-argument <c>starmap</c>.</summary>
    Task<TResult[]> StarmapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="func"/> in a worker and returns its result, like Python's <c>apply</c>.</summary>
    TResult Apply<TResult>(Func<TResult> func);

    /// <summary>Runs <paramref name="func"/>(<paramref name="arg1"/>) in a worker and returns its result.</summary>
    TResult Apply<T1, TResult>(Func<T1, TResult> func, T1 arg1);

    /// <summary>Runs <paramref name="func"/> with two arguments in a worker and returns its result.</summary>
    TResult Apply<T1, T2, TResult>(Func<T1, T2, TResult> func, T1 arg1, T2 arg2);

    /// <summary>Runs <paramref name="func"/> with three arguments in a worker and returns its result.</summary>
    TResult Apply<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, T1 arg1, T2 arg2, T3 arg3);

    /// <summary>Runs <paramref name="func"/> with four arguments in a worker and returns its result.</summary>
    TResult Apply<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4);

    /// <summary>Runs <paramref name="action"/> in a worker and waits for it.</summary>
    void Apply(Action action);

    /// <summary>Runs <paramref name="action"/>(<paramref name="arg1"/>) in a worker and waits for it.</summary>
    void Apply<T1>(Action<T1> action, T1 arg1);

    /// <summary>Runs <paramref name="action"/> with two arguments in a worker and waits for it.</summary>
    void Apply<T1, T2>(Action<T1, T2> action, T1 arg1, T2 arg2);

    /// <summary>Runs <paramref name="action"/> with three arguments in a worker and waits for it.</summary>
    void Apply<T1, T2, T3>(Action<T1, T2, T3> action, T1 arg1, T2 arg2, T3 arg3);

    /// <summary>Runs <paramref name="action"/> with four arguments in a worker and waits for it.</summary>
    void Apply<T1, T2, T3, T4>(Action<T1, T2, T3, T4> action, T1 arg1, T2 arg2, T3 arg3, T4 arg4);

    /// <summary>Runs the async <paramref name="func"/> in a worker, which awaits it; returns the awaited value.</summary>
    TResult Apply<TResult>(Func<Task<TResult>> func);

    /// <summary>Runs the async <paramref name="func"/>(<paramref name="arg1"/>) in a worker, which awaits it.</summary>
    TResult Apply<T1, TResult>(Func<T1, Task<TResult>> func, T1 arg1);

    /// <summary>Runs the async <paramref name="func"/> with two arguments in a worker, which awaits it.</summary>
    TResult Apply<T1, T2, TResult>(Func<T1, T2, Task<TResult>> func, T1 arg1, T2 arg2);

    /// <summary>Runs the async <paramref name="func"/> with three arguments in a worker, which awaits it.</summary>
    TResult Apply<T1, T2, T3, TResult>(Func<T1, T2, T3, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3);

    /// <summary>Runs the async <paramref name="func"/> with four arguments in a worker, which awaits it.</summary>
    TResult Apply<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4);

    /// <summary>Runs the async <paramref name="func"/> in a worker and waits until the worker has awaited it.</summary>
    void Apply(Func<Task> func);

    /// <summary>Runs the async <paramref name="func"/>(<paramref name="arg1"/>) in a worker and waits until the worker has awaited it.</summary>
    void Apply<T1>(Func<T1, Task> func, T1 arg1);

    /// <summary>Runs the async <paramref name="func"/> with two arguments in a worker and waits until the worker has awaited it.</summary>
    void Apply<T1, T2>(Func<T1, T2, Task> func, T1 arg1, T2 arg2);

    /// <summary>Runs the async <paramref name="func"/> with three arguments in a worker and waits until the worker has awaited it.</summary>
    void Apply<T1, T2, T3>(Func<T1, T2, T3, Task> func, T1 arg1, T2 arg2, T3 arg3);

    /// <summary>Runs the async <paramref name="func"/> with four arguments in a worker and waits until the worker has awaited it.</summary>
    void Apply<T1, T2, T3, T4>(Func<T1, T2, T3, T4, Task> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4);

    /// <summary>
    /// Runs <paramref name="func"/> in a worker, like Python's <c>apply_async</c>. A failure faults
    /// only this task. Cancelling drops it if queued, or cancels it if running.
    /// </summary>
    Task<TResult> ApplyAsync<TResult>(Func<TResult> func, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="func"/>(<paramref name="arg1"/>) in a worker; see <see cref="ProcessPool.ApplyAsync{TResult}(Func{TResult}, CancellationToken)"/>.</summary>
    Task<TResult> ApplyAsync<T1, TResult>(Func<T1, TResult> func, T1 arg1, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="func"/> with two arguments in a worker.</summary>
    Task<TResult> ApplyAsync<T1, T2, TResult>(Func<T1, T2, TResult> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="func"/> with three arguments in a worker.</summary>
    Task<TResult> ApplyAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="func"/> with four arguments in a worker.</summary>
    Task<TResult> ApplyAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="action"/> in a worker.</summary>
    Task ApplyAsync(Action action, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="action"/>(<paramref name="arg1"/>) in a worker.</summary>
    Task ApplyAsync<T1>(Action<T1> action, T1 arg1, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="action"/> with two arguments in a worker.</summary>
    Task ApplyAsync<T1, T2>(Action<T1, T2> action, T1 arg1, T2 arg2, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="action"/> with three arguments in a worker.</summary>
    Task ApplyAsync<T1, T2, T3>(Action<T1, T2, T3> action, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="action"/> with four arguments in a worker.</summary>
    Task ApplyAsync<T1, T2, T3, T4>(Action<T1, T2, T3, T4> action, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/> in a worker, which awaits it; completes with the awaited value or exception.</summary>
    Task<TResult> ApplyAsync<TResult>(Func<Task<TResult>> func, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/>(<paramref name="arg1"/>) in a worker, which awaits it.</summary>
    Task<TResult> ApplyAsync<T1, TResult>(Func<T1, Task<TResult>> func, T1 arg1, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/> with two arguments in a worker, which awaits it.</summary>
    Task<TResult> ApplyAsync<T1, T2, TResult>(Func<T1, T2, Task<TResult>> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/> with three arguments in a worker, which awaits it.</summary>
    Task<TResult> ApplyAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/> with four arguments in a worker, which awaits it.</summary>
    Task<TResult> ApplyAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/> in a worker, which awaits it.</summary>
    Task ApplyAsync(Func<Task> func, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/>(<paramref name="arg1"/>) in a worker, which awaits it.</summary>
    Task ApplyAsync<T1>(Func<T1, Task> func, T1 arg1, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/> with two arguments in a worker, which awaits it.</summary>
    Task ApplyAsync<T1, T2>(Func<T1, T2, Task> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/> with three arguments in a worker, which awaits it.</summary>
    Task ApplyAsync<T1, T2, T3>(Func<T1, T2, T3, Task> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default);

    /// <summary>Runs the async <paramref name="func"/> with four arguments in a worker, which awaits it.</summary>
    Task ApplyAsync<T1, T2, T3, T4>(Func<T1, T2, T3, T4, Task> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default);

    /// <summary>Accepts no new work; queued and running work completes, then the workers exit. See <see cref="ProcessPool.Join()"/>.</summary>
    void Close();

    /// <summary>
    /// Kills the workers now. Work still queued or running fails with <see cref="ObjectDisposedException"/>.
    /// </summary>
    void Terminate();

    /// <summary>Waits for the workers to exit; call <see cref="ProcessPool.Close"/> or <see cref="ProcessPool.Terminate"/> first.</summary>
    /// <exception cref="InvalidOperationException">The pool is still accepting work.</exception>
    void Join();

    /// <summary>Waits at most <paramref name="timeout"/> for the workers to exit; false if they have not.</summary>
    /// <exception cref="InvalidOperationException">The pool is still accepting work.</exception>
    bool Join(TimeSpan timeout);
}
