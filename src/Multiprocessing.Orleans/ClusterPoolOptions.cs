using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Multiprocessing.Orleans;

/// <summary>How a <see cref="ClusterPool"/> runs work on its nodes.</summary>
public sealed record ClusterPoolOptions
{
    /// <summary>How long a node may take to answer the driver (to join, and each check while it works); 5 seconds by default.</summary>
    public TimeSpan NodeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the driver checks that each node still answers; a node that misses three checks in a row is taken for dead. 2 seconds by default.</summary>
    public TimeSpan NodeCheckInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How many times a task that was running on a node that died is run again on another node before it fails, as Ray's
    /// <c>max_retries</c>. 0, the default, runs each task at most once: one lost with its node fails, naming the node.
    /// With retries a task may run more than once (its first run may have finished on the node before it died).
    /// </summary>
    public int MaxRetries { get; init; }

    /// <summary>Fail a task that runs longer than this, as <see cref="ProcessPoolOptions.TaskTimeout"/>; null for no limit.</summary>
    public TimeSpan? TaskTimeout { get; init; }

    /// <summary>The serializer for arguments, results and captured values; <see cref="MessagePackObjectSerializer"/> by default. Nodes pass the bytes on untouched.</summary>
    public ISerializer? Serializer { get; init; }

    /// <summary>Where the pool logs (a node's loss, a chunk requeued), as <see cref="ProcessPoolOptions.Logger"/>.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>The host's meter factory for the pool's metrics, as <see cref="ProcessPoolOptions.MeterFactory"/>.</summary>
    public IMeterFactory? MeterFactory { get; init; }
}
