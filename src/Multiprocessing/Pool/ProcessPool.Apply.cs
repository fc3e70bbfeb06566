using System.Diagnostics;

namespace Multiprocessing;

// Apply and ApplyAsync: one call.
public sealed partial class ProcessPool
{
    /// <summary>Runs <paramref name="func"/> in a worker and returns its result, like Python's <c>apply</c>.</summary>
    public TResult Apply<TResult>(Func<TResult> func) => ApplyAsync(func).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="func"/>(<paramref name="arg1"/>) in a worker and returns its result.</summary>
    public TResult Apply<T1, TResult>(Func<T1, TResult> func, T1 arg1) => ApplyAsync(func, arg1).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="func"/> with two arguments in a worker and returns its result.</summary>
    public TResult Apply<T1, T2, TResult>(Func<T1, T2, TResult> func, T1 arg1, T2 arg2) => ApplyAsync(func, arg1, arg2).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="func"/> with three arguments in a worker and returns its result.</summary>
    public TResult Apply<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, T1 arg1, T2 arg2, T3 arg3) => ApplyAsync(func, arg1, arg2, arg3).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="func"/> with four arguments in a worker and returns its result.</summary>
    public TResult Apply<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => ApplyAsync(func, arg1, arg2, arg3, arg4).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/> in a worker and waits for it.</summary>
    public void Apply(Action action) => ApplyAsync(action).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/>(<paramref name="arg1"/>) in a worker and waits for it.</summary>
    public void Apply<T1>(Action<T1> action, T1 arg1) => ApplyAsync(action, arg1).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/> with two arguments in a worker and waits for it.</summary>
    public void Apply<T1, T2>(Action<T1, T2> action, T1 arg1, T2 arg2) => ApplyAsync(action, arg1, arg2).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/> with three arguments in a worker and waits for it.</summary>
    public void Apply<T1, T2, T3>(Action<T1, T2, T3> action, T1 arg1, T2 arg2, T3 arg3) => ApplyAsync(action, arg1, arg2, arg3).GetAwaiter().GetResult();
    /// <summary>Runs <paramref name="action"/> with four arguments in a worker and waits for it.</summary>
    public void Apply<T1, T2, T3, T4>(Action<T1, T2, T3, T4> action, T1 arg1, T2 arg2, T3 arg3, T4 arg4) => ApplyAsync(action, arg1, arg2, arg3, arg4).GetAwaiter().GetResult();

    /// <summary>
    /// Runs <paramref name="func"/> in a worker, like Python's <c>apply_async</c>. A failure faults
    /// only this task. Cancelling drops it if queued, or cancels it if running.
    /// </summary>
    public Task<TResult> ApplyAsync<TResult>(Func<TResult> func, CancellationToken cancellationToken = default) => ApplyCore<bool, TResult>(func, false, cancellationToken);
    /// <summary>Runs <paramref name="func"/>(<paramref name="arg1"/>) in a worker; see <see cref="ApplyAsync{TResult}(Func{TResult}, CancellationToken)"/>.</summary>
    public Task<TResult> ApplyAsync<T1, TResult>(Func<T1, TResult> func, T1 arg1, CancellationToken cancellationToken = default) => ApplyCore<T1, TResult>(func, arg1, cancellationToken);
    /// <summary>Runs <paramref name="func"/> with two arguments in a worker.</summary>
    public Task<TResult> ApplyAsync<T1, T2, TResult>(Func<T1, T2, TResult> func, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2), TResult>(func, (arg1, arg2), cancellationToken);
    /// <summary>Runs <paramref name="func"/> with three arguments in a worker.</summary>
    public Task<TResult> ApplyAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> func, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3), TResult>(func, (arg1, arg2, arg3), cancellationToken);
    /// <summary>Runs <paramref name="func"/> with four arguments in a worker.</summary>
    public Task<TResult> ApplyAsync<T1, T2, T3, T4, TResult>(Func<T1, T2, T3, T4, TResult> func, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3, T4), TResult>(func, (arg1, arg2, arg3, arg4), cancellationToken);
    /// <summary>Runs <paramref name="action"/> in a worker.</summary>
    public Task ApplyAsync(Action action, CancellationToken cancellationToken = default) => ApplyCore<bool, bool>(action, false, cancellationToken);
    /// <summary>Runs <paramref name="action"/>(<paramref name="arg1"/>) in a worker.</summary>
    public Task ApplyAsync<T1>(Action<T1> action, T1 arg1, CancellationToken cancellationToken = default) => ApplyCore<T1, bool>(action, arg1, cancellationToken);
    /// <summary>Runs <paramref name="action"/> with two arguments in a worker.</summary>
    public Task ApplyAsync<T1, T2>(Action<T1, T2> action, T1 arg1, T2 arg2, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2), bool>(action, (arg1, arg2), cancellationToken);
    /// <summary>Runs <paramref name="action"/> with three arguments in a worker.</summary>
    public Task ApplyAsync<T1, T2, T3>(Action<T1, T2, T3> action, T1 arg1, T2 arg2, T3 arg3, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3), bool>(action, (arg1, arg2, arg3), cancellationToken);
    /// <summary>Runs <paramref name="action"/> with four arguments in a worker.</summary>
    public Task ApplyAsync<T1, T2, T3, T4>(Action<T1, T2, T3, T4> action, T1 arg1, T2 arg2, T3 arg3, T4 arg4, CancellationToken cancellationToken = default) => ApplyCore<(T1, T2, T3, T4), bool>(action, (arg1, arg2, arg3, arg4), cancellationToken);

    private Task<TResult> ApplyCore<TItem, TResult>(Delegate func, TItem args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(func);
        ThrowIfNotAccepting();
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<TResult>(cancellationToken);
        // A closure differs per call: ship it inline rather than growing every worker's function table.
        var job = new ApplyJob<TResult>(Ship(func, cacheable: false), _serializer);
        Submit(job, [new Chunk(job, 0, 0, 1, SerializeItems(new[] { args }))], 1);
        WatchCancellation(job, cancellationToken);
        return job.Task;
    }
}
