namespace Multiprocessing;

/// <summary>
/// What <see cref="Connection.Wait"/> waits on: <see cref="Connection{T}"/> (a message or the end of the stream),
/// <see cref="ProcessQueue{T}"/> (an item, or the queue closed), <see cref="WorkerProcess"/> (its exit) and
/// <see cref="Listener{T}"/> (a client to accept). Internal: the set is the library's, as Python's <c>wait</c> takes
/// only its own connections, sockets and sentinels.
/// </summary>
internal interface IWaitable
{
    /// <summary>Whether it is ready now, without waiting. Throws when it can never be ready (closed, never started).</summary>
    bool IsReady { get; }

    /// <summary>Completes when it is ready (or faults when it failed); cancelling <paramref name="cancellationToken"/> ends the wait promptly.</summary>
    Task WhenReadyAsync(CancellationToken cancellationToken);
}
