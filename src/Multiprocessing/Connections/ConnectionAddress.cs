using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Multiprocessing;

/// <summary>
/// Addresses of listeners as text, and the keys of their handshake. An address is a Unix socket path
/// (<c>/run/app/jobs.sock</c>, <c>unix:/run/app/jobs.sock</c>, or a relative path without a colon, as Python takes any
/// string as a Unix path) or a TCP endpoint (<c>127.0.0.1:5000</c>, <c>localhost:5000</c>, <c>[::1]:5000</c>,
/// <c>tcp:host:port</c>; port 0 lets a listener pick a free port).
/// </summary>
internal static class ConnectionAddress
{
    // The handshake runs without a key too, with this public one: a client with a key meeting a listener without one
    // (or the other way round) is told the keys differ, rather than waiting for a challenge that never comes.
    private static readonly byte[] NoKey = "Multiprocessing connection: no auth key"u8.ToArray();

    /// <summary>A copy of the user's key (1 to 1024 bytes), or the public stand-in when there is none.</summary>
    public static byte[] Key(byte[]? authKey, string parameter)
    {
        if (authKey is null) return NoKey;
        if (authKey.Length is 0 or > 1024)
            throw new ArgumentException("An auth key must be 1 to 1024 bytes long (32 random bytes is a good key), or null for none.", parameter);
        return [.. authKey];
    }

    /// <summary>Reads an address; host names stay names (see <see cref="ResolveAsync"/>).</summary>
    /// <exception cref="ArgumentException">It is none of the forms above.</exception>
    public static EndPoint Parse(string address, string parameter)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(address, parameter);
        if (address.StartsWith("unix:", StringComparison.Ordinal)) return Unix(address[5..], address, parameter);
        if (address.StartsWith("tcp:", StringComparison.Ordinal))
            return Tcp(address[4..], address, parameter) ?? throw Unreadable(address, parameter);
        if (address.StartsWith('/')) return Unix(address, address, parameter);
        if (Tcp(address, address, parameter) is { } tcp) return tcp;
        if (!address.Contains(':', StringComparison.Ordinal)) return Unix(address, address, parameter);
        throw Unreadable(address, parameter);
    }

    /// <summary>An endpoint as an address that <see cref="Parse"/> reads back: the path of a Unix socket, host:port for TCP.</summary>
    public static string Format(EndPoint endpoint) => endpoint switch
    {
        UnixDomainSocketEndPoint unix when unix.ToString() is { } path && path.StartsWith('/') => path,
        UnixDomainSocketEndPoint unix => "unix:" + unix,
        IPEndPoint ip => ip.ToString(),
        DnsEndPoint dns => $"{dns.Host}:{dns.Port.ToString(CultureInfo.InvariantCulture)}",
        _ => endpoint.ToString() ?? "",
    };

    /// <summary>A host name's address (IPv4 first, as loopback listeners usually bind 127.0.0.1); other endpoints as they are.</summary>
    public static async ValueTask<EndPoint> ResolveAsync(EndPoint endpoint, CancellationToken cancellationToken)
    {
        if (endpoint is not DnsEndPoint dns) return endpoint;
        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(dns.Host, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new ArgumentException($"The host '{dns.Host}' could not be resolved: {e.Message}.", "address", e);
        }
        var chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
            ?? throw new ArgumentException($"The host '{dns.Host}' has no address.", "address");
        return new IPEndPoint(chosen, dns.Port);
    }

    /// <summary>Refuses a listening address off this machine, unless allowed, and never without a key.</summary>
    public static void CheckListenable(EndPoint endpoint, bool allowNonLoopback, bool hasKey, string parameter)
    {
        if (endpoint is not IPEndPoint ip || IPAddress.IsLoopback(ip.Address)) return;
        if (!allowNonLoopback)
            throw new ArgumentException(
                $"{ip} is not a loopback address. A listener binds 127.0.0.1, ::1 or a Unix socket unless ListenerOptions.AllowNonLoopback is set: " +
                "then the auth key is all that keeps the network out.", parameter);
        if (!hasKey)
            throw new ArgumentException($"A listener on {ip}, reachable from the network, needs an auth key.", parameter);
    }

    /// <summary>A new private (0700) folder for a listener's socket, removed by the resource tracker if this process dies.</summary>
    public static string PrivateFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"multiprocessing-listener-{Environment.ProcessId}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4))}");
        ResourceTracker.RegisterPath(folder); // before it exists: a kill in between leaves nothing
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(folder);
        else Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return folder;
    }

    /// <summary>Deletes a file or folder this process made for a listener, and tells the resource tracker.</summary>
    public static void Remove(string path, bool folder)
    {
        try
        {
            if (folder) Directory.Delete(path, recursive: true);
            else File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        ResourceTracker.UnregisterPath(path);
    }

    private static UnixDomainSocketEndPoint Unix(string path, string address, string parameter)
    {
        if (path.Length == 0) throw Unreadable(address, parameter);
        try
        {
            return new UnixDomainSocketEndPoint(path);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"'{address}' cannot be a Unix socket path: {e.Message} Use a shorter path (at most about 100 bytes).", parameter, e);
        }
    }

    /// <summary>host:port, [v6]:port, or null when the text has no port after its last colon.</summary>
    private static EndPoint? Tcp(string text, string address, string parameter)
    {
        var colon = text.LastIndexOf(':');
        if (colon < 0) return null;
        var portText = text[(colon + 1)..];
        if (portText.Length is 0 or > 5 || !portText.All(char.IsAsciiDigit)) return null;
        var port = int.Parse(portText, NumberStyles.None, CultureInfo.InvariantCulture);
        if (port > IPEndPoint.MaxPort) throw new ArgumentException($"'{address}': {port} is not a port (0 to {IPEndPoint.MaxPort}).", parameter);
        var host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            return IPAddress.TryParse(host[1..^1], out var v6)
                ? new IPEndPoint(v6, port)
                : throw new ArgumentException($"'{address}': '{host}' is not an IPv6 address.", parameter);
        }
        if (host.Contains(':', StringComparison.Ordinal))
            throw new ArgumentException($"'{address}': write an IPv6 address in brackets, as [::1]:{port}.", parameter);
        if (host.Length == 0 || host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return new IPEndPoint(IPAddress.Loopback, port);
        if (IPAddress.TryParse(host, out var ip)) return new IPEndPoint(ip, port);
        return new DnsEndPoint(host, port);
    }

    private static ArgumentException Unreadable(string address, string parameter) => new(
        $"'{address}' is not an address: use a Unix socket path ('/tmp/app.sock' or 'unix:/tmp/app.sock') or host:port ('127.0.0.1:5000', 'localhost:0', '[::1]:5000').",
        parameter);
}
