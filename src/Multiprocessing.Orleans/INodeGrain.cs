using Orleans;

namespace Multiprocessing.Orleans;

/// <summary>
/// The grain that fronts one node's local process pool, one per silo (keyed by the silo's address, and placed on
/// exactly that silo by <see cref="SiloPinnedPlacementDirector"/>). A <see cref="ClusterPool"/>'s lanes call it.
/// </summary>
[Alias("Multiprocessing.INodeGrain")]
internal interface INodeGrain : IGrainWithStringKey
{
    /// <summary>The node's slots (its pool's workers) and the build of the application it runs.</summary>
    [Alias("Describe")]
    Task<NodeDescription> Describe();

    /// <summary>Runs one chunk serialized by the driver on the node's pool; the serialized results, or the failure.</summary>
    [Alias("Run"), ResponseTimeout("1.00:00:00")]
    Task<NodeReply> Run(string? functionKey, [Immutable] byte[] definition, [Immutable] byte[] payload, int count, CancellationToken cancellationToken = default);

    /// <summary>Lets the node's workers drop a function the driver's finished job used.</summary>
    [Alias("Forget")]
    Task Forget(string functionKey);
}

/// <summary>What a node offers: its slots, and the build it runs (nodes of another build are refused).</summary>
[GenerateSerializer, Immutable, Alias("Multiprocessing.NodeDescription")]
internal sealed record NodeDescription([property: Id(0)] string Node, [property: Id(1)] int Slots, [property: Id(2)] string Build);

/// <summary>A chunk's outcome: the results as the node's worker serialized them, or the exception (as the library ships exceptions).</summary>
[GenerateSerializer, Immutable, Alias("Multiprocessing.NodeReply")]
internal sealed record NodeReply([property: Id(0)] byte[]? Results, [property: Id(1)] byte[]? Error);
