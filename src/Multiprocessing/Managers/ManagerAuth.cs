using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;

namespace Multiprocessing;

/// <summary>
/// The mutual challenge that opens every manager connection, before any frame is read:
/// fixed-size messages, so nothing from an unauthenticated peer is ever parsed or deserialized.
/// <code>
/// server -> client: magic(8) + serverNonce(32)
/// client -> server: clientNonce(32) + HMAC-SHA256(key, "client" + serverNonce + clientNonce)(32) + session(16)
/// server -> client: HMAC-SHA256(key, "server" + clientNonce + serverNonce)(32)
/// </code>
/// The client proves it has the key, then the server proves it has it too. Fresh nonces on both
/// sides make a recorded exchange useless for a replay.
/// </summary>
internal static class ManagerAuth
{
    private const int NonceLength = 32;
    private const int MacLength = 32;
    private static readonly byte[] Magic = "MPMGR\u0001\0\0"u8.ToArray();
    // Sent instead of the greeting when every authenticated slot is taken: the client hears why, not a bare close.
    private static readonly byte[] FullMagic = "MPMGR\u0001FL"u8.ToArray();
    private static readonly byte[] ClientLabel = "client"u8.ToArray();
    private static readonly byte[] ServerLabel = "server"u8.ToArray();

    /// <summary>The length of the client's answer to the challenge.</summary>
    public const int ClientMessageLength = NonceLength + MacLength + 16;

    /// <summary>Tells a new connection that the manager serves its maximum of clients, in the greeting's place; never blocks.</summary>
    public static void RefuseFull(Socket socket)
    {
        try
        {
            socket.Blocking = false; // 40 bytes into an empty send buffer; a peer that does not read costs nothing
            socket.Send([.. FullMagic, .. new byte[NonceLength]]);
        }
        catch (SocketException) { }
    }

    /// <summary>
    /// Runs the server's side; the client's session id when the peer knows the key, else null. <paramref name="admit"/>
    /// runs once the client has proved it has the key and before the server's proof is sent: when it returns false
    /// (every slot is taken), the client is told so in the proof's place and null is returned.
    /// </summary>
    public static Guid? Server(WireConnection connection, byte[] key, Func<bool> admit)
    {
        var serverNonce = RandomNumberGenerator.GetBytes(NonceLength);
        connection.Send([.. Magic, .. serverNonce]);
        if (!connection.TryReadExactly(ClientMessageLength, out var answer)) return null;
        var clientNonce = answer.Span[..NonceLength].ToArray();
        var expected = Mac(key, ClientLabel, serverNonce, clientNonce);
        if (!CryptographicOperations.FixedTimeEquals(expected, answer.Span.Slice(NonceLength, MacLength))) return null;
        var session = new Guid(answer.Span[(NonceLength + MacLength)..]);
        if (!admit())
        {
            connection.Send(FullProof);
            return null;
        }
        connection.Send(Mac(key, ServerLabel, clientNonce, serverNonce));
        return session;
    }

    // In the proof's place when the client has the key but every slot is taken (a MAC never equals it by chance).
    private static readonly byte[] FullProof = [.. "MPMGR full: MaxConnections"u8, .. new byte[MacLength - 26]];

    /// <summary>Runs the client's side; throws <see cref="AuthenticationException"/> when either side lacks the key.</summary>
    public static void Client(WireConnection connection, byte[] key, Guid session, string endpoint)
    {
        if (!connection.TryReadExactly(Magic.Length + NonceLength, out var hello))
            throw new AuthenticationException($"The peer at {endpoint} closed the connection before greeting: it is not a Multiprocessing manager, or it is stopping.");
        if (hello.Span[..FullMagic.Length].SequenceEqual(FullMagic)) throw Full(endpoint);
        if (!hello.Span[..Magic.Length].SequenceEqual(Magic))
            throw new AuthenticationException($"The peer at {endpoint} is not a Multiprocessing manager (no manager greeting).");
        var serverNonce = hello.Span[Magic.Length..].ToArray();
        var clientNonce = RandomNumberGenerator.GetBytes(NonceLength);
        connection.Send([.. clientNonce, .. Mac(key, ClientLabel, serverNonce, clientNonce), .. session.ToByteArray()]);
        if (!connection.TryReadExactly(MacLength, out var proof))
            throw new AuthenticationException(
                $"The manager at {endpoint} refused the auth key. Use the same key the manager was started or served with (Manager.AuthKey on the serving side).");
        if (proof.Span.SequenceEqual(FullProof)) throw Full(endpoint);
        if (!CryptographicOperations.FixedTimeEquals(Mac(key, ServerLabel, clientNonce, serverNonce), proof.Span))
            throw new AuthenticationException($"The manager at {endpoint} could not prove it knows the auth key; refusing to talk to it.");
    }

    private static MultiprocessingException Full(string endpoint) => new(
        $"The manager at {endpoint} refused the connection: it already serves its maximum of clients (ManagerOptions.MaxConnections on the serving side). " +
        "Close connections you no longer use, retry later, or raise the limit.");

    private static byte[] Mac(byte[] key, byte[] label, byte[] first, byte[] second)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        hmac.AppendData(label);
        hmac.AppendData(first);
        hmac.AppendData(second);
        return hmac.GetHashAndReset();
    }
}
