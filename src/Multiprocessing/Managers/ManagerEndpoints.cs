using System.Net.Sockets;
using System.Net;

namespace Multiprocessing;

/// <summary>Endpoints as text, so a handle can name where its manager listens: "unix:/path" or "tcp:host:port".</summary>
internal static class ManagerEndpoints
{
    public static string Format(EndPoint endpoint) => endpoint switch
    {
        UnixDomainSocketEndPoint u => "unix:" + u,
        IPEndPoint ip => "tcp:" + ip,
        _ => throw new ArgumentException($"A manager listens on an IPEndPoint (TCP) or a UnixDomainSocketEndPoint, not a {endpoint.GetType().Name}.", nameof(endpoint)),
    };

    public static EndPoint Parse(string text)
    {
        if (text.StartsWith("unix:", StringComparison.Ordinal)) return new UnixDomainSocketEndPoint(text[5..]);
        if (text.StartsWith("tcp:", StringComparison.Ordinal) && IPEndPoint.TryParse(text[4..], out var ip)) return ip;
        throw new ManagerProtocolException($"'{text}' is not a manager endpoint");
    }

    public static Socket NewSocket(EndPoint endpoint) => endpoint is UnixDomainSocketEndPoint
        ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
}
