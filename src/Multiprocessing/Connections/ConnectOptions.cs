namespace Multiprocessing;

/// <summary>How <see cref="Connection.Connect{T}(string, byte[], ConnectOptions)"/> connects: the bound on connecting and the auth handshake, and on a message.</summary>
public sealed record ConnectOptions
{
    /// <summary>
    /// How long connecting and the auth handshake may take together; past it, <see cref="TimeoutException"/>. A listener
    /// answers the challenge as soon as the connection is made (it does not wait for its <c>Accept</c>), so this bounds
    /// only a listener that is stuck or a peer that is not a listener. 10 s by default.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The largest message, serialized, that this end sends or accepts; a longer one announced by the peer breaks the connection. 1 GiB by default.</summary>
    public int MaxMessageBytes { get; init; } = FrameChannel.DefaultMaxFrameLength;

    internal void Validate() => CheckLimits(HandshakeTimeout, MaxMessageBytes);

    internal static void CheckLimits(TimeSpan handshakeTimeout, int maxMessageBytes)
    {
        if (handshakeTimeout <= TimeSpan.Zero || handshakeTimeout.TotalMilliseconds > int.MaxValue)
            throw new ArgumentOutOfRangeException("HandshakeTimeout", handshakeTimeout, "HandshakeTimeout must be positive (and under 24 days).");
        if (maxMessageBytes < 1024) throw new ArgumentOutOfRangeException("MaxMessageBytes", maxMessageBytes, "MaxMessageBytes must be at least 1024.");
    }
}
