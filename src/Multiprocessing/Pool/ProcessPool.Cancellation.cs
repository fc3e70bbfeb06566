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
        var targets = new List<(LaneState Worker, long[] Calls)>();
        lock (_lock)
        {
            for (var node = _queue.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Job == job) _queue.Remove(node);
                node = next;
            }
            foreach (var w in _lanes)
            {
                if (w is null || w.Gone) continue;
                var calls = w.InFlight.Where(c => c.Job == job).Select(c => c.CallId).ToArray();
                if (calls.Length > 0) targets.Add((w, calls));
            }
        }
        if (targets.Count == 0) return;
        foreach (var (w, calls) in targets)
            w.Lane.Cancel(calls);
        _ = Task.Delay(_options.CancellationGracePeriod).ContinueWith(_ =>
        {
            List<LaneState> kill = [];
            lock (_lock)
            {
                foreach (var (w, calls) in targets)
                {
                    if (w.Gone || w.KillReason != KillReason.None || !calls.Contains(w.Lane.Running.CallId)) continue;
                    w.KillReason = KillReason.Cancelled;
                    kill.Add(w);
                }
            }
            foreach (var w in kill) w.Lane.Kill();
        }, TaskScheduler.Default);
    }

    private static void ExceptionDispatch(Exception e) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
}
