namespace Multiprocessing;

/// <summary>
/// Environment variables through which a parent tells a child what it is and how to reach it. A child
/// reads them once and removes them, with the startup hook that made it a worker, so that a process the
/// user's code starts from a worker does not believe it is one.
/// </summary>
internal static class WorkerEnvironment
{
    public const string Socket = "MULTIPROCESSING_SOCKET";
    public const string Token = "MULTIPROCESSING_TOKEN";
    public const string ParentPid = "MULTIPROCESSING_PARENT_PID";
    /// <summary>The runtime's list of startup hooks; this library adds itself to it for its children.</summary>
    public const string StartupHooks = "DOTNET_STARTUP_HOOKS";
    /// <summary>How a startup hook names this library: by simple name, which resolves in every deployment (single-file included).</summary>
    public static readonly string HookName = typeof(WorkerEnvironment).Assembly.GetName().Name!;

    /// <summary>Set to "1" in the parent: workers keep the .NET runtime's diagnostic IPC and debugger sockets (for dotnet-trace, dotnet-counters, a debugger).</summary>
    public const string WorkerDiagnostics = "MULTIPROCESSING_WORKER_DIAGNOSTICS";

    /// <summary>
    /// Turns off the runtime's diagnostic IPC and debugger pipes in a worker, unless the user asked for them
    /// (<see cref="WorkerDiagnostics"/>) or set the runtime's own switches: a worker killed by a crash, a
    /// timeout or a Terminate cannot remove them, and they would pile up in the temporary folder.
    /// </summary>
    public static void SetRuntimeDiagnostics(IDictionary<string, string?> environment)
    {
        if (Environment.GetEnvironmentVariable(WorkerDiagnostics) == "1") return;
        if (environment.ContainsKey("DOTNET_EnableDiagnostics") || RuntimeDiagnosticSwitches.Any(environment.ContainsKey)) return;
        foreach (var name in RuntimeDiagnosticSwitches) environment[name] = "0";
        environment[DiagnosticsTurnedOff] = "1";
    }

    private static readonly string[] RuntimeDiagnosticSwitches = ["DOTNET_EnableDiagnostics_IPC", "DOTNET_EnableDiagnostics_Debugger"];

    /// <summary>Marks the runtime switches as the library's, so a worker drops them and its own children start from the user's environment.</summary>
    private const string DiagnosticsTurnedOff = "MULTIPROCESSING_DIAGNOSTICS_OFF";

    /// <summary>The startup hooks a child must run: the parent's own (if any), then this library's.</summary>
    public static string ChildStartupHooks()
    {
        var inherited = Environment.GetEnvironmentVariable(StartupHooks);
        return string.IsNullOrEmpty(inherited) ? HookName : inherited + Path.PathSeparator + HookName;
    }

    /// <summary>In a worker: where its parent waits for it, or null in any other process. Clears the variables.</summary>
    public static WorkerConnection? TakeConnection()
    {
        var socket = Environment.GetEnvironmentVariable(Socket);
        var token = Environment.GetEnvironmentVariable(Token);
        var parent = Environment.GetEnvironmentVariable(ParentPid);
        if (socket is null) return null;
        foreach (var name in new[] { Socket, Token, ParentPid }) Environment.SetEnvironmentVariable(name, null);
        if (Environment.GetEnvironmentVariable(DiagnosticsTurnedOff) == "1")
            foreach (var name in RuntimeDiagnosticSwitches.Append(DiagnosticsTurnedOff)) Environment.SetEnvironmentVariable(name, null);
        var hooks = (Environment.GetEnvironmentVariable(StartupHooks) ?? "").Split(Path.PathSeparator).Where(h => h.Length > 0 && h != HookName).ToArray();
        Environment.SetEnvironmentVariable(StartupHooks, hooks.Length == 0 ? null : string.Join(Path.PathSeparator, hooks));
        if (token is null || !int.TryParse(parent, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parentPid))
            throw new InvalidOperationException($"A Multiprocessing worker was started without its token or parent pid ({Socket} is set, {Token} or {ParentPid} is not); workers are started by the library, not by hand.");
        return new WorkerConnection(socket, token, parentPid);
    }
}

/// <summary>Where a worker connects to, and whom it serves.</summary>
internal sealed record WorkerConnection(string SocketPath, string Token, int ParentPid);
