using System.Buffers;
using MessagePack;
using Orleans;
using Orleans.Concurrency;

namespace Multiprocessing.Orleans;

/// <summary>
/// A node's grain (see <see cref="INodeGrain"/>): passes chunks to the node's pool as they came and their outcomes
/// back. Reentrant: chunks from every lane of every driver run at once, as many as the node has workers.
/// </summary>
[SiloPinnedPlacement, Reentrant]
internal sealed class NodeGrain(ClusterNode node) : Grain, INodeGrain
{
    public Task<NodeDescription> Describe() => Task.FromResult(node.Describe());

    public Task<NodeReply> Run(string driver, long callId, string? functionKey, byte[] definition, byte[] payload, int count, long[] received, CancellationToken cancellationToken = default)
    {
        if (received.Length > 0) node.Calls.Received(driver, received);
        return node.Calls.Run(driver, callId, cancel => RunAsync(functionKey, definition, payload, count, cancel), cancellationToken);
    }

    public async Task<NodeReply[]> RunBatch(string driver, NodeBatch batch, long[] received)
    {
        if (received.Length > 0) node.Calls.Received(driver, received);
        var runs = new Task<NodeReply>[batch.CallIds.Length];
        for (var i = 0; i < runs.Length; i++)
        {
            var (key, definition, payload, count) = (batch.Keys[i], batch.Definitions[batch.DefinitionOf[i]], batch.Payloads[i], batch.Counts[i]);
            runs[i] = node.Calls.Run(driver, batch.CallIds[i], cancel => RunAsync(key, definition, payload, count, cancel), CancellationToken.None);
        }
        return await Task.WhenAll(runs);
    }

    public async Task<NodeReply?> Collect(string driver, long callId) =>
        node.Calls.Collect(driver, callId) is { } answer ? await answer : null;

    public Task Cancel(string driver, long[] callIds)
    {
        node.Calls.Cancel(driver, callIds);
        return Task.CompletedTask;
    }

    public Task<byte[]> Check(string driver, long[] received, long[] unanswered)
    {
        node.Calls.Received(driver, received);
        return Task.FromResult(node.Calls.States(driver, unanswered));
    }

    private async Task<NodeReply> RunAsync(string? functionKey, byte[] definition, byte[] payload, int count, CancellationToken cancellationToken)
    {
        try
        {
            return new NodeReply(await node.Pool.RunForwardedAsync(functionKey, definition, payload, count, cancellationToken), null);
        }
        catch (Exception e)
        {
            // The library's own form of an exception: its type, message and stack, rebuilt on the driver as its type.
            var buffer = new ArrayBufferWriter<byte>();
            var writer = new MessagePackWriter(buffer);
            ExceptionShipper.Write(ref writer, e);
            writer.Flush();
            return new NodeReply(null, buffer.WrittenSpan.ToArray());
        }
    }

    public Task Forget(string functionKey)
    {
        node.Pool.ForgetForwarded(functionKey);
        return Task.CompletedTask;
    }
}
