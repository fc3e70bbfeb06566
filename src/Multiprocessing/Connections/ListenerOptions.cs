namespace Multiprocessing;

/// <summary>How a <see cref="Listener{T}"/> listens: its backlog, the bound on the auth handshake and on a message, and whether it may face the network.</summary>
public sealed record ListenerOptions
{
    /// <summary>
    /// The most connections the operating system holds before the listener takes them (Python's <c>backlog</c>).
    /// The listener takes connections and runs their handshake as they come, whether or not <see cref="Listener{T}.Accept"/>
    /// is being called, so a client never waits for the server's code to reach <c>Accept</c>. 16 by default.
    /// </summary>
    public int Backlog { get; init; } = 16;

    /// <summary>How long a new connection has to answer the auth challenge before it is dropped (and <see cref="Listener{T}.Accept"/> reports it). 10 s by default.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The largest message, serialized, that this end sends or accepts; a longer one announced by the peer breaks the connection. 1 GiB by default.</summary>
    public int MaxMessageBytes { get; init; } = FrameChannel.DefaultMaxFrameLength;

    /// <summary>
    /// A TCP address other than loopback exposes the listener to the network; it is refused unless this is true, and
    /// then only with an auth key. Whoever knows the key can then send messages that this process deserializes.
    /// </summary>
    public bool AllowNonLoopback { get; init; }

    internal void Validate()
    {
        if (Backlog < 1) throw new ArgumentOutOfRangeException(nameof(Backlog), Backlog, "Backlog must be at least 1.");
        ConnectOptions.CheckLimits(HandshakeTimeout, MaxMessageBytes);
    }
}
