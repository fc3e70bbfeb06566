using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;

namespace Multiprocessing.Orleans;

/// <summary>Where a node listens and how it finds the cluster, for <see cref="ClusterPoolNode.RunAsync"/>.</summary>
public sealed record ClusterNodeSettings
{
    /// <summary>The port other nodes reach this one on (Orleans' silo port).</summary>
    public int SiloPort { get; init; } = 11111;

    /// <summary>The port drivers connect to (Orleans' gateway port).</summary>
    public int GatewayPort { get; init; } = 30000;

    /// <summary>
    /// The Redis server that keeps the cluster's membership (a StackExchange.Redis connection string such as
    /// <c>"redis.internal:6379"</c>): nodes and drivers find each other through it, and any node may die. Null for
    /// development clustering on one machine, where the first node keeps the membership (see <see cref="PrimarySilo"/>).
    /// </summary>
    public string? Redis { get; init; }

    /// <summary>Without <see cref="Redis"/>: the first node's silo endpoint; null when this node is the first.</summary>
    public IPEndPoint? PrimarySilo { get; init; }

    /// <summary>
    /// The address other machines reach this node on; the node then listens on every interface. Null for loopback only
    /// (a cluster on one machine).
    /// </summary>
    public IPAddress? AdvertisedAddress { get; init; }

    /// <summary>The cluster's name: the nodes and drivers of one cluster use the same, and clusters of other names ignore them.</summary>
    public string ClusterId { get; init; } = "multiprocessing";

    /// <summary>The node's worker processes (its slots); null for one per processor.</summary>
    public int? Workers { get; init; }
}

/// <summary>How a driver finds the cluster, for <see cref="ClusterPoolNode.ConnectAsync"/>.</summary>
public sealed record ClusterConnectSettings
{
    /// <summary>The nodes' gateways (<see cref="ClusterNodeSettings.GatewayPort"/>), used when <see cref="Redis"/> is null; loopback port 30000 by default.</summary>
    public IReadOnlyList<IPEndPoint> Gateways { get; init; } = [new IPEndPoint(IPAddress.Loopback, 30000)];

    /// <summary>The Redis server that keeps the membership, as the nodes' <see cref="ClusterNodeSettings.Redis"/>; the gateways are read from it.</summary>
    public string? Redis { get; init; }

    /// <summary>The cluster's name, as the nodes'.</summary>
    public string ClusterId { get; init; } = "multiprocessing";

    /// <summary>How many nodes must have joined before the pool is made; more may join later and get work.</summary>
    public int Nodes { get; init; } = 1;

    /// <summary>How long to wait for the gateways to answer and <see cref="Nodes"/> nodes to join.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// A node and a driver in one line each, for programs that do not write an Orleans host. A node is this program run as
/// an Orleans silo with a local process pool; a driver connects a <see cref="ClusterPool"/> to the nodes. Every node
/// runs the same build as the driver. To host the silo yourself, use <see cref="ClusterNodeHosting.AddClusterPoolNode"/>
/// and <see cref="ClusterPool(IClusterClient, ClusterPoolOptions?)"/>.
/// </summary>
/// <example><code>
/// // on each machine:  myapp --node
/// if (args is ["--node"]) { await ClusterPoolNode.RunAsync(new() { Redis = "redis:6379", AdvertisedAddress = myAddress }); return; }
/// // the driver:
/// await using var pool = await ClusterPoolNode.ConnectAsync(new() { Redis = "redis:6379", Nodes = 3 });
/// </code></example>
public static class ClusterPoolNode
{
    private const string ServiceId = "multiprocessing";

    /// <summary>Runs this program as a node until <paramref name="cancellationToken"/> is cancelled or the process is stopped.</summary>
    public static async Task RunAsync(ClusterNodeSettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Workers is < 1) throw new ArgumentOutOfRangeException(nameof(settings), settings.Workers, "ClusterNodeSettings.Workers must be at least 1 (or null for one per processor).");
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.UseOrleans(silo =>
        {
            if (settings.Redis is null && settings.AdvertisedAddress is null)
            {
                silo.UseLocalhostClustering(settings.SiloPort, settings.GatewayPort, settings.PrimarySilo, ServiceId, settings.ClusterId);
            }
            else
            {
                if (settings.Redis is { } redis) silo.UseRedisClustering(redis);
                else silo.UseDevelopmentClustering(settings.PrimarySilo);
                silo.ConfigureEndpoints(settings.AdvertisedAddress ?? IPAddress.Loopback, settings.SiloPort, settings.GatewayPort, listenOnAnyHostAddress: settings.AdvertisedAddress is not null);
                silo.Configure<ClusterOptions>(o => (o.ServiceId, o.ClusterId) = (ServiceId, settings.ClusterId));
            }
            silo.AddClusterPoolNode(node => node with { Workers = settings.Workers });
        });
        using var host = builder.Build();
        await host.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Connects a driver to the cluster and waits until <see cref="ClusterConnectSettings.Nodes"/> nodes have joined;
    /// the pool owns the connection and closes it when disposed.
    /// </summary>
    /// <exception cref="TimeoutException">Fewer nodes joined within <see cref="ClusterConnectSettings.Timeout"/> (the message says what was last seen).</exception>
    /// <exception cref="InvalidOperationException">A node runs another build of the application.</exception>
    public static async Task<ClusterPool> ConnectAsync(ClusterConnectSettings settings, ClusterPoolOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Nodes, 1, nameof(settings));
        if (settings.Redis is null && settings.Gateways.Count == 0)
            throw new ArgumentException("ClusterConnectSettings needs the nodes' Gateways or the Redis server that keeps the membership.", nameof(settings));
        var deadline = DateTime.UtcNow + settings.Timeout;
        Exception? last = null;
        var seen = 0;
        while (DateTime.UtcNow < deadline)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var host = Connect(settings);
            try
            {
                using (var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    limit.CancelAfter(deadline - DateTime.UtcNow);
                    await host.StartAsync(limit.Token).ConfigureAwait(false);
                }
                ClusterPool? pool = null;
                while (pool is null && DateTime.UtcNow < deadline)
                {
                    try
                    {
                        pool = new ClusterPool(host.Services.GetRequiredService<IClusterClient>(), options);
                    }
                    catch (InvalidOperationException e) when (e.Data[ClusterPool.Reason] is ClusterPool.NoNodes)
                    {
                        last = e;
                        await Task.Delay(250, cancellationToken).ConfigureAwait(false);
                    }
                }
                if (pool is not null)
                {
                    // Nodes that come after the first are found as any node that joins a running pool is.
                    while ((seen = pool.Nodes.Count) < settings.Nodes && DateTime.UtcNow < deadline)
                        await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                    if (seen >= settings.Nodes)
                    {
                        pool.Connection = host;
                        return pool;
                    }
                    await pool.DisposeAsync().ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                if (e.Data[ClusterPool.Reason] is ClusterPool.OtherBuild)
                {
                    await StopAsync(host).ConfigureAwait(false);
                    throw;
                }
                last = e;
                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            }
            await StopAsync(host).ConfigureAwait(false);
        }
        var where = settings.Redis is { } r ? $"the Redis server {r}" : $"the gateways {string.Join(", ", settings.Gateways)}";
        throw new TimeoutException($"{seen} of the {settings.Nodes} ClusterPool nodes wanted joined the cluster '{settings.ClusterId}' through {where} within {settings.Timeout.TotalSeconds:0.#} s. Check that the nodes run and use the same ClusterId.", last);
    }

    private static IHost Connect(ClusterConnectSettings settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.UseOrleansClient(client =>
        {
            if (settings.Redis is { } redis)
            {
                client.UseRedisClustering(redis);
                // Nodes that join later are found through the membership; their gateways soon after.
                client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
            }
            else
            {
                client.UseStaticClustering([.. settings.Gateways]);
            }
            client.Configure<ClusterOptions>(o => (o.ServiceId, o.ClusterId) = (ServiceId, settings.ClusterId));
        });
        return builder.Build();
    }

    /// <summary>Stops a client connection, bounded: a connection to a node that died may not close gracefully.</summary>
    internal static async Task StopAsync(IHost host)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await host.StopAsync(limit.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Closed ungracefully below.
        }
        try
        {
            if (host is IAsyncDisposable disposable) await disposable.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            else host.Dispose();
        }
        catch (Exception)
        {
            // What is left of the connection goes with the process.
        }
    }
}
