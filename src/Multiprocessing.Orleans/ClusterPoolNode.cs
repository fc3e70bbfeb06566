using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Hosting;

namespace Multiprocessing.Orleans;

/// <summary>Where a node listens and which cluster it joins, for <see cref="ClusterPoolNode.RunAsync"/>.</summary>
public sealed record ClusterNodeSettings
{
    /// <summary>The port other silos reach this one on.</summary>
    public int SiloPort { get; init; } = 11111;

    /// <summary>The port drivers connect to (<see cref="ClusterPoolNode.ConnectAsync"/>).</summary>
    public int GatewayPort { get; init; } = 30000;

    /// <summary>The first node's silo endpoint, which keeps the membership in development clustering; null when this node is the first.</summary>
    public IPEndPoint? PrimarySilo { get; init; }

    /// <summary>The cluster's name: nodes and drivers of one cluster use the same.</summary>
    public string ClusterId { get; init; } = "multiprocessing";

    /// <summary>The node's worker processes (its slots); null for one per processor.</summary>
    public int? Workers { get; init; }
}

/// <summary>
/// A node and a driver in one line each, for programs that do not write an Orleans host: a node is this program run
/// as an Orleans silo on loopback with development clustering (the first node keeps the membership), and a driver
/// connects a <see cref="ClusterPool"/> to the nodes' gateways. For real deployments across machines, host the silo
/// yourself with a membership provider (see <see cref="ClusterNodeHosting.AddClusterPoolNode"/>).
/// </summary>
public static class ClusterPoolNode
{
    private const string ServiceId = "multiprocessing";

    /// <summary>Runs this program as a node until <paramref name="cancellationToken"/> is cancelled or the process is stopped.</summary>
    public static async Task RunAsync(ClusterNodeSettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.UseOrleans(silo => silo
            .UseLocalhostClustering(settings.SiloPort, settings.GatewayPort, settings.PrimarySilo, ServiceId, settings.ClusterId)
            .AddClusterPoolNode(node => node with { Workers = settings.Workers }));
        using var host = builder.Build();
        await host.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Connects a driver to the nodes whose gateways listen on <paramref name="gatewayPorts"/> (loopback), waiting up to
    /// <paramref name="timeout"/> until <paramref name="nodes"/> nodes have joined; the pool owns the connection.
    /// </summary>
    /// <exception cref="TimeoutException">Fewer nodes joined in time.</exception>
    public static async Task<ClusterPool> ConnectAsync(int[] gatewayPorts, int nodes, TimeSpan timeout, string clusterId = "multiprocessing", ClusterPoolOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(gatewayPorts);
        ArgumentOutOfRangeException.ThrowIfLessThan(nodes, 1);
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.UseOrleansClient(client => client.UseLocalhostClustering(gatewayPorts, ServiceId, clusterId));
            var host = builder.Build();
            try
            {
                await host.StartAsync(cancellationToken).ConfigureAwait(false);
                while (DateTime.UtcNow < deadline)
                {
                    try
                    {
                        var pool = new ClusterPool(host.Services.GetRequiredService<IClusterClient>(), options);
                        if (pool.Nodes.Count >= nodes)
                        {
                            pool.Connection = host;
                            return pool;
                        }
                        await pool.DisposeAsync().ConfigureAwait(false);
                    }
                    catch (InvalidOperationException e) when (e.Message.StartsWith("The cluster has no ClusterPool nodes", StringComparison.Ordinal))
                    {
                        last = e;
                    }
                    await Task.Delay(250, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                last = e;
                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            }
            host.Dispose();
        }
        throw new TimeoutException($"Fewer than {nodes} ClusterPool nodes answered on the gateway ports {string.Join(", ", gatewayPorts)} within {timeout}.", last);
    }
}
