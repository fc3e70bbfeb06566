// The surface every pool offers, passed to the scheduler this pool drives (generated from IProcessPool's members:
// each forwards as is, so the cluster pool and the local one cannot drift apart).
namespace Multiprocessing.Orleans;

public sealed partial class ClusterPool
{
    /// <inheritdoc />
    public TResult[] Map<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize = null) => _pool.Map(func, items, chunkSize);

    /// <inheritdoc />
    public TResult[] Map<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress) => _pool.Map(func, items, chunkSize, progress);

    /// <inheritdoc />
    public TResult[] Map<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize = null) => _pool.Map(func, items, chunkSize);

    /// <inheritdoc />
    public TResult[] Map<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress) => _pool.Map(func, items, chunkSize, progress);

    /// <inheritdoc />
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize = null, CancellationToken cancellationToken = default) => _pool.MapAsync(func, items, chunkSize, cancellationToken);

    /// <inheritdoc />
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken) => _pool.MapAsync(func, items, chunkSize, progress, cancellationToken);

    /// <inheritdoc />
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize = null, CancellationToken cancellationToken = default) => _pool.MapAsync(func, items, chunkSize, cancellationToken);

    /// <inheritdoc />
    public Task<TResult[]> MapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int? chunkSize, IProgress<MapProgress>? progress, CancellationToken cancellationToken) => _pool.MapAsync(func, items, chunkSize, progress, cancellationToken);

    /// <inheritdoc />
    public IEnumerable<TResult> Imap<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1) => _pool.Imap(func, items, chunkSize);

    /// <inheritdoc />
    public IEnumerable<TResult> Imap<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1) => _pool.Imap(func, items, chunkSize);

    /// <inheritdoc />
    public IEnumerable<TResult> ImapUnordered<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1) => _pool.ImapUnordered(func, items, chunkSize);

    /// <inheritdoc />
    public IEnumerable<TResult> ImapUnordered<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1) => _pool.ImapUnordered(func, items, chunkSize);

    /// <inheritdoc />
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) => _pool.ImapAsync(func, items, chunkSize, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) => _pool.ImapAsync(func, items, chunkSize, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<T, TResult>(Func<T, Task<TResult>> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) => _pool.ImapUnorderedAsync(func, items, chunkSize, cancellationToken);

    /// <inheritdoc />
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<T, TResult>(Func<T, TResult> func, IEnumerable<T> items, int chunkSize = 1, CancellationToken cancellationToken = default) => _pool.ImapUnorderedAsync(func, items, chunkSize, cancellationToken);

    /// <inheritdoc />
    public TResult[] Starmap<T1, T2, TResult>(Func<T1, T2, TResult> func, IEnumerable<(T1, T2)> items, int? chunkSize = null) => _pool.Starmap(func, items, chunkSize);

    /// <inheritdoc />
    public TResult[] Starmap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null) => _pool.Starmap(func, items, chunkSize);

    /// <inheritdoc />
    public Task<TResult[]> StarmapAsync<T1, T2, TResult>(Func<T1, T2, TResult> func, IEnumerable<(T1, T2)> items, int? chunkSize = null, CancellationToken cancellationToken = default) => _pool.StarmapAsync(func, items, chunkSize, cancellationToken);

    /// <inheritdoc />
    public Task<TResult[]> StarmapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null, CancellationToken cancellationToken = default) => _pool.StarmapAsync(func, items, chunkSize, cancellationToken);

    /// <inheritdoc />
    public TResult Apply<TResult>(Func<TResult> func) => _pool.Apply(func);

    /// <inheritdoc />
    public TResult Apply<T1, TResult>(Func<T1, TResult> func, T1 arg1) => _pool.Apply(func, arg1);

    /// <inheritdoc />
    public TResult Apply<T1, T2, TResult>(Func<T1, T2, TResult> func, T1 arg1, T2 arg2) => _pool.Apply(func, arg1, arg2);

    /// <inheritdoc />
    public TResult Apply<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, T1 arg1, T2 arg2, T3 arg3) => _pool.Apply(func, arg1, arg2, arg3);

    /// <inheritdoc />
    public TResult Apply<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => _pool.Apply(func, arg1, arg2, arg3, arg4);

    /// <inheritdoc />
    public void Apply(Action action) => _pool.Apply(action);

    /// <inheritdoc />
    public void Apply<T1>(Action<T1> action, T1 arg1) => _pool.Apply(action, arg1);

    /// <inheritdoc />
    public void Apply<T1, T2>(Action<T1, T2> action, T1 arg1, T2 arg2) => _pool.Apply(action, arg1, arg2);

    /// <inheritdoc />
    public void Apply<T1, T2, T3>(Action<T1, T2, T3> action, T1 arg1, T2 arg2, T3 arg3) => _pool.Apply(action, arg1, arg2, arg3);

    /// <inheritdoc />
    public void Apply<T1, T2, T3, T4>(Action<T1, T2, T3, T4> action, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => _pool.Apply(action, arg1, arg2, arg3, arg4);

    /// <inheritdoc />
    public TResult Apply<TResult>(Func<Task<TResult>> func) => _pool.Apply(func);

    /// <inheritdoc />
    public TResult Apply<T1, TResult>(Func<T1, Task<TResult>> func, T1 arg1) => _pool.Apply(func, arg1);

    /// <inheritdoc />
    public TResult Apply<T1, T2, TResult>(Func<T1, T2, Task<TResult>> func, T1 arg1, T2 arg2) => _pool.Apply(func, arg1, arg2);

    /// <inheritdoc />
    public TResult Apply<T1, T2, T3, TResult>(Func<T1, T2, T3, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3) => _pool.Apply(func, arg1, arg2, arg3);

    /// <inheritdoc />
    public TResult Apply<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => _pool.Apply(func, arg1, arg2, arg3, arg4);

    /// <inheritdoc />
    public void Apply(Func<Task> func) => _pool.Apply(func);

    /// <inheritdoc />
    public void Apply<T1>(Func<T1, Task> func, T1 arg1) => _pool.Apply(func, arg1);

    /// <inheritdoc />
    public void Apply<T1, T2>(Func<T1, T2, Task> func, T1 arg1, T2 arg2) => _pool.Apply(func, arg1, arg2);

    /// <inheritdoc />
    public void Apply<T1, T2, T3>(Func<T1, T2, T3, Task> func, T1 arg1, T2 arg2, T3 arg3) => _pool.Apply(func, arg1, arg2, arg3);

    /// <inheritdoc />
    public void Apply<T1, T2, T3, T4>(Func<T1, T2, T3, T4, Task> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => _pool.Apply(func, arg1, arg2, arg3, arg4);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<TResult>(Func<TResult> func, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<T1, TResult>(Func<T1, TResult> func, T1 arg1, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<T1, T2, TResult>(Func<T1, T2, TResult> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, arg3, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, arg3, arg4, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync(Action action, CancellationToken cancellationToken = default) => _pool.ApplyAsync(action, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync<T1>(Action<T1> action, T1 arg1, CancellationToken cancellationToken = default) => _pool.ApplyAsync(action, arg1, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync<T1, T2>(Action<T1, T2> action, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => _pool.ApplyAsync(action, arg1, arg2, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync<T1, T2, T3>(Action<T1, T2, T3> action, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => _pool.ApplyAsync(action, arg1, arg2, arg3, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync<T1, T2, T3, T4>(Action<T1, T2, T3, T4> action, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => _pool.ApplyAsync(action, arg1, arg2, arg3, arg4, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<TResult>(Func<Task<TResult>> func, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<T1, TResult>(Func<T1, Task<TResult>> func, T1 arg1, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<T1, T2, TResult>(Func<T1, T2, Task<TResult>> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, arg3, cancellationToken);

    /// <inheritdoc />
    public Task<TResult> ApplyAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, Task<TResult>> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, arg3, arg4, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync(Func<Task> func, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync<T1>(Func<T1, Task> func, T1 arg1, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync<T1, T2>(Func<T1, T2, Task> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync<T1, T2, T3>(Func<T1, T2, T3, Task> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, arg3, cancellationToken);

    /// <inheritdoc />
    public Task ApplyAsync<T1, T2, T3, T4>(Func<T1, T2, T3, T4, Task> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => _pool.ApplyAsync(func, arg1, arg2, arg3, arg4, cancellationToken);

    /// <inheritdoc />
    public void Close() => _pool.Close();

    /// <inheritdoc />
    public void Terminate() => _pool.Terminate();

    /// <inheritdoc />
    public void Join() => _pool.Join();

    /// <inheritdoc />
    public bool Join(TimeSpan timeout) => _pool.Join(timeout);
}
