using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;

namespace Multiprocessing.Orleans;

/// <summary>Makes a silo a node of <see cref="ClusterPool"/>s, in Orleans' builder style.</summary>
public static class ClusterNodeHosting
{
    /// <summary>
    /// Runs a node in this silo: a local <see cref="ProcessPool"/> (started with the node's first work) whose workers
    /// are the slots the node offers to <see cref="ClusterPool"/> drivers. Every node must run the same build of the
    /// application as the drivers; a crashing task takes down one of its worker processes, never the node.
    /// </summary>
    /// <example><code>
    /// builder.UseOrleans(silo => silo.UseLocalhostClustering().AddClusterPoolNode(node => node with { Workers = 4 }));
    /// </code></example>
    public static ISiloBuilder AddClusterPoolNode(this ISiloBuilder silo, Func<ClusterNodeOptions, ClusterNodeOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var options = configure?.Invoke(new ClusterNodeOptions()) ?? new ClusterNodeOptions();
        if (options.Workers is < 1) throw new ArgumentOutOfRangeException(nameof(configure), options.Workers, "ClusterNodeOptions.Workers must be at least 1 (or null for one per processor).");
        silo.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(options));
        silo.Services.AddSingleton<ClusterNode>();
        silo.AddPlacementDirector<SiloPinnedPlacement, SiloPinnedPlacementDirector>();
        return silo;
    }
}
