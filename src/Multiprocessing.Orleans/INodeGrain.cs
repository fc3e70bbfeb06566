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

    /// <summary>
    /// Runs several short calls in one message (what a lane is given at once when tasks are short: one message per
    /// call would cost more than the calls); each is run once per driver and call id, as by <see cref="Run"/>.
    /// </summary>
    [Alias("RunBatch"), ResponseTimeout("1.00:00:00")]
    Task<NodeReply[]> RunBatch(string driver, NodeBatch batch, [Immutable] long[] received);

    /// <summary>The answer of a call the node ran or runs (see <see cref="NodeCalls.Collect"/>), without running it; null when the node has none.</summary>
    [Alias("Collect"), ResponseTimeout("1.00:00:00")]
    Task<NodeReply?> Collect(string driver, long callId);

    /// <summary>Cancels the driver's calls (their functions see their cancellation token cancelled).</summary>
    [Alias("Cancel")]
    Task Cancel(string driver, [Immutable] long[] callIds);

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

/// <summary>Calls sent in one message: each call's id, function key, definition (by index: a job's chunks share one), payload and item count.</summary>
[GenerateSerializer, Immutable, Alias("Multiprocessing.NodeBatch")]
internal sealed record NodeBatch(
    [property: Id(0)] long[] CallIds,
    [property: Id(1)] string?[] Keys,
    [property: Id(2)] byte[][] Definitions,
    [property: Id(3)] int[] DefinitionOf,
    [property: Id(4)] byte[][] Payloads,
    [property: Id(5)] int[] Counts);

/// <summary>A chunk's outcome: the results as the node's worker serialized them, or the exception (as the library ships exceptions).</summary>
[GenerateSerializer, Immutable, Alias("Multiprocessing.NodeReply")]
internal sealed record NodeReply([property: Id(0)] byte[]? Results, [property: Id(1)] byte[]? Error);
