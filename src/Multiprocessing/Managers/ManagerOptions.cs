using System.Net;
using Microsoft.Extensions.Logging;

namespace Multiprocessing;

/// <summary>How a manager serves: where, with which key, and the limits it puts on clients.</summary>
public sealed record ManagerOptions
{
    /// <summary>The default for <see cref="MaxFrameBytes"/>: 64 MiB.</summary>
    public const int DefaultMaxFrameBytes = 64 << 20;

    /// <summary>
    /// For <see cref="Manager.StartAsync"/>: where the server process listens. Null (the default) is a
    /// Unix domain socket in a private (0700) folder, reachable only by this user. An
    /// <see cref="IPEndPoint"/> serves over TCP (port 0 picks a free port; see <see cref="Manager.Endpoint"/>).
    /// </summary>
    public EndPoint? Address { get; init; }

    /// <summary>The secret clients must prove they know (HMAC-SHA256 challenge). Null: 32 random bytes (see <see cref="Manager.AuthKey"/>).</summary>
    public byte[]? AuthKey { get; init; }

    /// <summary>Where refused connections and malformed requests are reported (for <see cref="Manager.Serve"/>). Null: not logged.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>The largest request a client may send; a larger announced length closes its connection.</summary>
    public int MaxFrameBytes { get; init; } = DefaultMaxFrameBytes;

    /// <summary>
    /// The most authenticated connections served at once; a client that connects beyond it is refused with a
    /// message that says so. Connections still in the auth challenge do not count (see <see cref="MaxPendingHandshakes"/>).
    /// </summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>
    /// The most connections that may wait in the auth challenge at once. A new connection beyond it closes the
    /// oldest waiting one, so peers that connect and say nothing (or send garbage) never lock clients with the
    /// key out: a real client answers the challenge in a round trip.
    /// </summary>
    public int MaxPendingHandshakes { get; init; } = 64;

    /// <summary>
    /// How long a read on a manager connection polls for the peer's answer before it sleeps in the kernel, on the
    /// server's and this program's connections. A request and its reply take microseconds of work while waking a
    /// sleeping thread costs tens, so a brief poll makes most round trips fast; the poll backs off by itself when it
    /// keeps missing (a slow peer, a busy machine). 50 µs by default (the environment variable
    /// MULTIPROCESSING_MANAGER_SPIN_US, in microseconds, overrides the default); zero never polls.
    /// </summary>
    public TimeSpan ReadSpin { get; init; } = WireConnection.DefaultSpin;

    /// <summary>How long a new connection has to answer the auth challenge.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long <see cref="Manager.StartAsync"/> waits for the server process to listen.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Serving on an address other than loopback or a Unix socket exposes the manager to the network;
    /// it is refused unless this is true. The auth key then is all that stands between the network and
    /// code execution in the manager (an authenticated client can ship functions to run there).
    /// </summary>
    public bool AllowNonLoopback { get; init; }

    internal void Validate()
    {
        if (MaxFrameBytes is < 1024) throw new ArgumentOutOfRangeException(nameof(MaxFrameBytes), MaxFrameBytes, "MaxFrameBytes must be at least 1024.");
        if (ReadSpin < TimeSpan.Zero || ReadSpin > TimeSpan.FromSeconds(1)) throw new ArgumentOutOfRangeException(nameof(ReadSpin), ReadSpin, "ReadSpin must be between zero (never poll) and one second.");
        if (MaxConnections < 1) throw new ArgumentOutOfRangeException(nameof(MaxConnections), MaxConnections, "MaxConnections must be at least 1.");
        if (MaxPendingHandshakes < 1) throw new ArgumentOutOfRangeException(nameof(MaxPendingHandshakes), MaxPendingHandshakes, "MaxPendingHandshakes must be at least 1.");
        if (HandshakeTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), HandshakeTimeout, "HandshakeTimeout must be positive.");
        if (AuthKey is { Length: 0 or > 1024 }) throw new ArgumentException("An auth key must be 1 to 1024 bytes long; 32 random bytes is a good key.", nameof(AuthKey));
        if (Address is not null) CheckAddress(Address, AllowNonLoopback);
    }

    internal static void CheckAddress(EndPoint address, bool allowNonLoopback)
    {
        ManagerEndpoints.Format(address);
        if (address is IPEndPoint ip && !IPAddress.IsLoopback(ip.Address) && !allowNonLoopback)
            throw new ArgumentException(
                $"{ip} is not a loopback address. A manager serves 127.0.0.1 or ::1 unless ManagerOptions.AllowNonLoopback is set: " +
                "anyone who can reach it and knows the auth key can run code in it.", nameof(address));
    }
}
