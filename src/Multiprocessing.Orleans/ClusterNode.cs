using System.Reflection;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Multiprocessing.Orleans;

/// <summary>How a node runs the work a <see cref="ClusterPool"/> sends it.</summary>
public sealed record ClusterNodeOptions
{
    /// <summary>The node's worker processes, which are also the slots it offers; null for one per processor.</summary>
    public int? Workers { get; init; }

    /// <summary>How long the node's workers may take to start.</summary>
    public TimeSpan WorkerStartTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>One node's side of a cluster: its local process pool, started with the silo's first work.</summary>
internal sealed class ClusterNode(IOptions<ClusterNodeOptions> options, ILocalSiloDetails silo) : IAsyncDisposable
{
    private readonly Lazy<ProcessPool> _pool = new(() => new ProcessPool(new ProcessPoolOptions
    {
        Processes = options.Value.Workers,
        WorkerStartTimeout = options.Value.WorkerStartTimeout,
        // A worker holds the next call while it runs one: between tasks it then waits for nobody, not for this
        // process to be scheduled beside busy workers on a busy machine.
        MinWindow = 2,
    }));

    /// <summary>The build a driver must run too: the application's entry assembly (its name and module version).</summary>
    public static string Build { get; } = Assembly.GetEntryAssembly() is { } entry
        ? $"{entry.GetName().Name} {entry.ManifestModule.ModuleVersionId}"
        : "unknown";

    public ProcessPool Pool => _pool.Value;

    /// <summary>The calls drivers sent, kept until they have the answers.</summary>
    public NodeCalls Calls { get; } = new();

    public NodeDescription Describe() => new(silo.SiloAddress.ToParsableString(), options.Value.Workers ?? Environment.ProcessorCount, Build);

    public async ValueTask DisposeAsync()
    {
        if (_pool.IsValueCreated) await _pool.Value.DisposeAsync().ConfigureAwait(false);
    }
}
