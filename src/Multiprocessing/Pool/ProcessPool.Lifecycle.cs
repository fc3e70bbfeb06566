using System.Diagnostics;

namespace Multiprocessing;

// Close, Terminate, Join, Dispose.
public sealed partial class ProcessPool
{
    /// <summary>Accepts no new work; queued and running work completes, then the workers exit. See <see cref="Join()"/>.</summary>
    public void Close()
    {
        List<LaneState> idle;
        lock (_lock)
        {
            if (_state != State.Running) return;
            _state = State.Closed;
            idle = RetireIdleWorkersLocked();
        }
        foreach (var w in idle) SendExit(w);
    }

    /// <summary>
    /// Kills the workers now. Work still queued or running fails with <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Terminate() => TerminateCore(new ObjectDisposedException(nameof(ProcessPool), "The process pool was terminated (or disposed) before this work finished."));

    /// <summary>Waits for the workers to exit; call <see cref="Close"/> or <see cref="Terminate"/> first.</summary>
    /// <exception cref="InvalidOperationException">The pool is still accepting work.</exception>
    public void Join() => Join(Timeout.InfiniteTimeSpan);

    /// <summary>Waits at most <paramref name="timeout"/> for the workers to exit; false if they have not.</summary>
    /// <exception cref="InvalidOperationException">The pool is still accepting work.</exception>
    public bool Join(TimeSpan timeout)
    {
        lock (_lock)
        {
            if (_state == State.Running) throw new InvalidOperationException("Call Close() or Terminate() before Join(), as with Python's Pool.");
        }
        return _allExited.Task.Wait(timeout);
    }

    /// <summary>Terminates the pool (as Python's <c>with Pool()</c> does on exit) and waits briefly for the workers to go.</summary>
    public void Dispose()
    {
        Terminate();
        _allExited.Task.Wait(TimeSpan.FromSeconds(10));
        _timeoutTimer?.Dispose();
    }

    /// <summary>Terminates the pool and waits briefly for the workers to go.</summary>
    public async ValueTask DisposeAsync()
    {
        Terminate();
        await Task.WhenAny(_allExited.Task, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        if (_timeoutTimer is not null) await _timeoutTimer.DisposeAsync().ConfigureAwait(false);
    }
}
