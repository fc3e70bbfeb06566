using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Multiprocessing;

// Cancellation of jobs, and small helpers.
public sealed partial class ProcessPool
{
    private void WatchCancellation(PoolJob job, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled) return;
        var registration = cancellationToken.Register(() =>
        {
            job.Abort(new OperationCanceledException(cancellationToken));
            CancelRunning(job);
        });
        // Once the job is over the registration only holds memory.
        _ = JobCompletion(job).ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
    }

    private static Task JobCompletion(PoolJob job) => job switch
    {
        IHasTask t => t.Completion,
        _ => Task.CompletedTask,
    };

    /// <summary>Drops the job's queued chunks, signals its running ones, and kills workers that ignore the signal past the grace period.</summary>
    private void CancelRunning(PoolJob job)
    {
        var targets = new List<(PoolWorker Worker, long[] Calls)>();
        lock (_lock)
        {
            for (var node = _queue.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Job == job) _queue.Remove(node);
                node = next;
            }
            foreach (var w in _workers)
            {
                if (w is null || w.Gone) continue;
                var calls = w.InFlight.Where(c => c.Job == job).Select(c => c.CallId).ToArray();
                if (calls.Length > 0) targets.Add((w, calls));
            }
        }
        if (targets.Count == 0) return;
        foreach (var (w, calls) in targets)
            w.SendCancel(calls);
        _ = Task.Delay(_options.CancellationGracePeriod).ContinueWith(_ =>
        {
            List<PoolWorker> kill = [];
            lock (_lock)
            {
                foreach (var (w, calls) in targets)
                {
                    if (w.Gone || w.KillReason != KillReason.None || !calls.Contains(w.Status.Read().CallId)) continue;
                    w.KillReason = KillReason.Cancelled;
                    kill.Add(w);
                }
            }
            foreach (var w in kill) w.Child?.Kill();
        }, TaskScheduler.Default);
    }

    private static long MemoryOf(int pid)
    {
        try
        {
            // /proc/PID/statm: size resident shared ... in pages.
            var fields = File.ReadAllText($"/proc/{pid}/statm").Split(' ');
            return long.Parse(fields[1]) * Environment.SystemPageSize;
        }
        catch (Exception) { return 0; }
    }

    internal void Log(Exception e, string message, params object?[] args)
    {
#pragma warning disable CA2254 // the template is a constant at every call site
        _logger.LogError(e, message, args);
#pragma warning restore CA2254
    }

    private static void ExceptionDispatch(Exception e) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
}
