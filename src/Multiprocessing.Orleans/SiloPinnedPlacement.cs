using Orleans;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Multiprocessing.Orleans;

/// <summary>
/// Places a grain on exactly the silo its key names (<see cref="SiloAddress.ToParsableString"/>), and nowhere else: a
/// node's grain must run beside that node's pool. Orleans' placement hints fall back to another silo when the named
/// one is gone; a node's work must fail instead, so the driver sees the node as dead.
/// </summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking]
internal sealed class SiloPinnedPlacement : PlacementStrategy
{
}

/// <summary>Marks a grain class as placed by <see cref="SiloPinnedPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class SiloPinnedPlacementAttribute() : PlacementAttribute(new SiloPinnedPlacement());

/// <summary>Chooses the silo a <see cref="SiloPinnedPlacement"/> grain's key names, if it is an active member.</summary>
internal sealed class SiloPinnedPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var key = target.GrainIdentity.Key.ToString();
        var wanted = SiloAddress.FromParsableString(key);
        if (Array.IndexOf(context.GetCompatibleSilos(target), wanted) >= 0) return Task.FromResult(wanted);
        // Not an OrleansException: placement retries those as transient, and a gone node is not coming back.
        throw new InvalidOperationException($"The node {key} is not an active member of the cluster.");
    }
}
