using Multiprocessing;

/// <summary>
/// Where a worker process switches into worker mode, before the application's <c>Main</c> runs.
/// A worker is the application itself started again (as Python's spawn re-runs the program), with this
/// assembly named in <c>DOTNET_STARTUP_HOOKS</c>: the runtime calls <see cref="Initialize"/> first, which
/// serves calls and exits, so <c>Main</c> never runs in a worker. That works wherever the application
/// itself runs: <c>dotnet run</c>, a build or publish folder, self-contained, single-file, ReadyToRun and
/// test hosts alike, with no extra file to deploy. The runtime wants this exact name in the global
/// namespace. A module initializer could not do this job: a worker would run under the initializer's
/// lock, and every other thread that touched the application's code would wait for it forever.
/// </summary>
internal static class StartupHook
{
    /// <summary>Called by the runtime before <c>Main</c>; returns at once unless this process was started as a worker.</summary>
    internal static void Initialize()
    {
        if (WorkerEnvironment.TakeConnection() is not { } connection) return;
        if (Multiprocessing.Platform.Current.GetParentProcessId() != connection.ParentPid)
        {
            // The parent that started us died before we got here: nothing we could run would be delivered.
            if (!Multiprocessing.Platform.Current.ProcessExists(connection.ParentPid)) Environment.Exit(1);
            // The parent lives, so something else started us (a program a worker ran through native code, which sees
            // the worker's environment as it was): not a worker, so the program runs as it should.
            return;
        }
        Environment.Exit(WorkerHost.Run(connection));
    }
}
