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

    /// <summary>
    /// Runs one chunk serialized by the driver on the node's pool (once per driver and call id: asking again joins the
    /// run or gets its kept answer); the serialized results, or the failure. <paramref name="received"/>: calls whose
    /// answers the driver has, which the node stops keeping.
    /// </summary>
    [Alias("Run"), ResponseTimeout("1.00:00:00")]
    Task<NodeReply> Run(string driver, long callId, string? functionKey, [Immutable] byte[] definition, [Immutable] byte[] payload, int count, [Immutable] long[] received, CancellationToken cancellationToken = default);

    /// <summary>What the node knows of the driver's calls that have no answer yet (see <see cref="NodeCalls"/>); also the driver's check that the node is up.</summary>
    [Alias("Check")]
    Task<byte[]> Check(string driver, [Immutable] long[] received, [Immutable] long[] unanswered);

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
