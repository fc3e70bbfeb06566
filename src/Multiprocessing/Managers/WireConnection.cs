using System.Net.Sockets;

namespace Multiprocessing;

/// <summary>
/// One side of a manager connection: the library's framing (<see cref="FrameChannel"/>) with the bound the
/// manager sets on requests, plus the state of the client's current call. Not thread-safe: a connection
/// serves one request at a time.
/// </summary>
internal sealed class WireConnection(Socket socket) : IDisposable
{
    private readonly FrameChannel _channel = new(socket, bufferSize: 16 * 1024);

    /// <summary>Frames of the next request or reply are written here, then <see cref="Flush"/>ed.</summary>
    public FrameBuffer Output { get; } = new();

    public Socket Socket => _channel.Socket;

    /// <summary>The framing underneath (the auth challenge runs on it).</summary>
    public FrameChannel Channel => _channel;

    /// <summary>How long a read polls before it sleeps (see <see cref="FrameChannel.SpinTicks"/>).</summary>
    public long SpinTicks
    {
        get => _channel.SpinTicks;
        set => _channel.SpinTicks = value;
    }

    /// <summary>The default read spin: a few round trips' worth, 50 µs (MULTIPROCESSING_MANAGER_SPIN_US overrides it).</summary>
    public static readonly TimeSpan DefaultSpin = TimeSpan.FromMicroseconds(
        int.TryParse(Environment.GetEnvironmentVariable("MULTIPROCESSING_MANAGER_SPIN_US"), out var us) && us >= 0 ? us : 50);

    /// <summary>A spin as <see cref="System.Diagnostics.Stopwatch"/> ticks, for <see cref="SpinTicks"/>.</summary>
    public static long Ticks(TimeSpan spin) => (long)(spin.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);

    /// <summary>State of the client's current call (see <see cref="ManagerCall"/>).</summary>
    public bool CallSent { get; set; }

    /// <summary>Whether the current call's reply was read, so the connection is in step.</summary>
    public bool CallAnswered { get; set; }

    public string Peer => _channel.Peer;

    public void Send(ReadOnlySpan<byte> data) => _channel.Send(data);

    /// <summary>Sends what <see cref="Output"/> holds and clears it.</summary>
    public void Flush()
    {
        _channel.Send(Output.WrittenSpan);
        Output.Clear();
    }

    /// <summary>Reads exactly <paramref name="count"/> raw bytes (the handshake). False at end of stream.</summary>
    public bool TryReadExactly(int count, out ReadOnlyMemory<byte> bytes) => _channel.TryReadExactly(count, out bytes);

    /// <summary>
    /// Blocks until a whole frame has arrived; its payload stays valid until the next read.
    /// False at end of stream; <see cref="ManagerProtocolException"/> for a length outside 1..<paramref name="maxLength"/>.
    /// </summary>
    public bool TryReceiveFrame(int maxLength, out ReadOnlyMemory<byte> frame)
    {
        try
        {
            return _channel.TryReceive(maxLength, out frame);
        }
        catch (InvalidDataException e)
        {
            throw new ManagerProtocolException(e.Message);
        }
    }

    /// <summary>After a large frame, returns to a small buffer so an idle connection holds little memory.</summary>
    public void Shrink() => _channel.Shrink();

    public void Dispose() => _channel.Dispose();
}
