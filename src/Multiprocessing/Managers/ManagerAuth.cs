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
/// sides make a recorded exchange useless for a replay. The same challenge opens a <see cref="Listener{T}"/>'s
/// connections, with a greeting of its own (<see cref="Realm.Listener"/>), so neither kind of client mistakes
/// the other kind of server for its own.
/// </summary>
internal static class ManagerAuth
{
    private const int NonceLength = 32;
    private const int MacLength = 32;
    private static readonly byte[] ClientLabel = "client"u8.ToArray();
    private static readonly byte[] ServerLabel = "server"u8.ToArray();

    /// <summary>Who serves the challenge: the greeting a client expects, and how errors name the serving side.</summary>
    internal sealed class Realm
    {
        /// <summary>A manager's server (<see cref="ManagerServer"/>).</summary>
        public static readonly Realm Manager = new(
            "MPMGR\u0001\0\0"u8.ToArray(), "MPMGR\u0001FL"u8.ToArray(), "manager",
            "Use the same key the manager was started or served with (Manager.AuthKey on the serving side).");

        /// <summary>A <see cref="Multiprocessing.Listener{T}"/>, reached by <see cref="Multiprocessing.Connection.Connect{T}(string, byte[], ConnectOptions)"/>.</summary>
        public static readonly Realm Listener = new(
            "MPCON\u0001\0\0"u8.ToArray(), "MPCON\u0001FL"u8.ToArray(), "listener",
            "Use the key the listener was made with (the authKey given to new Listener<T>(...) on the other side).");

        private Realm(byte[] magic, byte[] fullMagic, string noun, string keyAdvice)
        {
            Magic = magic;
            FullMagic = fullMagic;
            Noun = noun;
            KeyAdvice = keyAdvice;
        }

        /// <summary>The server's greeting, before its nonce.</summary>
        public byte[] Magic { get; }

        /// <summary>Sent instead of the greeting when every authenticated slot is taken: the client hears why, not a bare close.</summary>
        public byte[] FullMagic { get; }

        /// <summary>The serving side in messages: "manager", "listener".</summary>
        public string Noun { get; }

        /// <summary>What to do about a refused key.</summary>
        public string KeyAdvice { get; }
    }

    /// <summary>The length of the client's answer to the challenge.</summary>
    public const int ClientMessageLength = NonceLength + MacLength + 16;

    /// <summary>Tells a new connection that the manager serves its maximum of clients, in the greeting's place; never blocks.</summary>
    public static void RefuseFull(Socket socket)
    {
        try
        {
            socket.Blocking = false; // 40 bytes into an empty send buffer; a peer that does not read costs nothing
            socket.Send([.. Realm.Manager.FullMagic, .. new byte[NonceLength]]);
        }
        catch (SocketException) { }
    }

    /// <summary>
    /// Runs the server's side; the client's session id when the peer knows the key, else null. <paramref name="admit"/>
    /// runs once the client has proved it has the key and before the server's proof is sent: when it returns false
    /// (every slot is taken), the client is told so in the proof's place and null is returned.
    /// </summary>
    public static Guid? Server(WireConnection connection, byte[] key, Func<bool> admit) => Server(connection.Channel, key, admit, Realm.Manager);

    /// <summary>As <see cref="Server(WireConnection, byte[], Func{bool})"/>, on a bare channel, for <paramref name="realm"/>.</summary>
    public static Guid? Server(FrameChannel connection, byte[] key, Func<bool> admit, Realm realm)
    {
        var serverNonce = RandomNumberGenerator.GetBytes(NonceLength);
        connection.Send([.. realm.Magic, .. serverNonce]);
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
    public static void Client(WireConnection connection, byte[] key, Guid session, string endpoint) => Client(connection.Channel, key, session, endpoint, Realm.Manager);

    /// <summary>As <see cref="Client(WireConnection, byte[], Guid, string)"/>, on a bare channel, towards <paramref name="realm"/>.</summary>
    public static void Client(FrameChannel connection, byte[] key, Guid session, string endpoint, Realm realm)
    {
        var noun = realm.Noun;
        if (!connection.TryReadExactly(realm.Magic.Length + NonceLength, out var hello))
            throw new AuthenticationException($"The peer at {endpoint} closed the connection before greeting: it is not a Multiprocessing {noun}, or it is stopping.");
        if (hello.Span[..realm.FullMagic.Length].SequenceEqual(realm.FullMagic)) throw Full(endpoint);
        if (!hello.Span[..realm.Magic.Length].SequenceEqual(realm.Magic))
            throw new AuthenticationException($"The peer at {endpoint} is not a Multiprocessing {noun} (no {noun} greeting).");
        var serverNonce = hello.Span[realm.Magic.Length..].ToArray();
        var clientNonce = RandomNumberGenerator.GetBytes(NonceLength);
        connection.Send([.. clientNonce, .. Mac(key, ClientLabel, serverNonce, clientNonce), .. session.ToByteArray()]);
        if (!connection.TryReadExactly(MacLength, out var proof))
            throw new AuthenticationException($"The {noun} at {endpoint} refused the auth key. {realm.KeyAdvice}");
        if (proof.Span.SequenceEqual(FullProof)) throw Full(endpoint);
        if (!CryptographicOperations.FixedTimeEquals(Mac(key, ServerLabel, clientNonce, serverNonce), proof.Span))
            throw new AuthenticationException($"The {noun} at {endpoint} could not prove it knows the auth key; refusing to talk to it.");
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
