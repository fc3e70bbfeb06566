// Connections between programs that were not started by one another: Python's multiprocessing.connection
// (Listener, Client, wait), in C#. Run it with:  dotnet run --project examples/Connections
//
// The server listens on a Unix socket with an auth key; clients are this same program started again as
// separate processes ("client <address>", the key in an environment variable): they share nothing with the
// server but the address and the key. A client with the wrong key is refused, on both sides.
using System.Diagnostics;
using System.Security.Authentication;
using System.Security.Cryptography;
using Multiprocessing;

if (args is ["client", var clientAddress]) return Peers.RunClient(clientAddress);

// Python: listener = Listener(authkey=key)  (an address of its own choosing; here a Unix socket in a private folder)
var key = RandomNumberGenerator.GetBytes(32);
using var listener = new Listener<string>(authKey: key);
Console.WriteLine($"Listening on {listener.Address}");

var clients = new[] { Peers.StartClient(listener.Address, key), Peers.StartClient(listener.Address, key) };
var connections = new List<Connection<string>> { listener.Accept(), listener.Accept() };
Console.WriteLine($"Accepted 2 clients (the last from '{listener.LastAccepted}': Unix-socket clients have no address of their own).");

// Python: for c in wait(connections): ...  Answer whichever client has something to say; drop those that hung up.
var open = new List<object>(connections);
while (open.Count > 0)
{
    var ready = Connection.Wait(open, TimeSpan.FromSeconds(60));
    if (ready.Count == 0) throw new TimeoutException("No client said anything for 60 s.");
    foreach (Connection<string> connection in ready)
    {
        try
        {
            var line = connection.Receive();
            Console.WriteLine($"  server got: {line}");
            connection.Send(line.ToUpperInvariant());
        }
        catch (EndOfStreamException)
        {
            open.Remove(connection);
            connection.Dispose();
        }
    }
}

// A client with another key: its Connect throws AuthenticationException, and so does the server's Accept.
var intruder = Peers.StartClient(listener.Address, RandomNumberGenerator.GetBytes(32));
try
{
    using var unexpected = listener.Accept();
    throw new InvalidOperationException("A client with the wrong key was accepted.");
}
catch (AuthenticationException e)
{
    Console.WriteLine($"  server refused a client: {e.Message}");
}

foreach (var client in clients.Append(intruder))
{
    if (!client.WaitForExit(60_000))
    {
        client.Kill();
        throw new TimeoutException($"Client {client.Id} did not exit within 60 s.");
    }
    Console.Write(client.StandardOutput.ReadToEnd());
    Console.Write(client.StandardError.ReadToEnd());
}
var codes = clients.Select(c => c.ExitCode).Append(intruder.ExitCode).ToArray();
if (codes is not [0, 0, Peers.Refused]) throw new InvalidOperationException($"Unexpected exit codes: {string.Join(", ", codes)}");
Console.WriteLine("Connections complete.");
return 0;

/// <summary>The client side, and starting it as a separate program.</summary>
internal static class Peers
{
    /// <summary>The exit code of a client whose key was refused.</summary>
    public const int Refused = 3;

    private const string KeyVariable = "CONNECTIONS_EXAMPLE_KEY";

    /// <summary>Python: conn = Client(address, authkey=key); conn.send(...); conn.recv()</summary>
    public static int RunClient(string address)
    {
        var key = Convert.FromHexString(Environment.GetEnvironmentVariable(KeyVariable) ?? "");
        try
        {
            using var connection = Connection.Connect<string>(address, key);
            connection.Send($"hello from pid {Environment.ProcessId}");
            Console.WriteLine($"  client {Environment.ProcessId} got: {connection.Receive()}");
            return 0;
        }
        catch (AuthenticationException e)
        {
            Console.Error.WriteLine($"  client {Environment.ProcessId} was refused: {e.Message}");
            return Refused;
        }
    }

    /// <summary>Starts this program again in client mode: a process that knows only the address and the key.</summary>
    public static Process StartClient(string address, byte[] key)
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("The path of this program is unknown.");
        var info = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Run as "dotnet Connections.dll": start the same way; run through its apphost: start that.
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") info.ArgumentList.Add(typeof(Peers).Assembly.Location);
        info.ArgumentList.Add("client");
        info.ArgumentList.Add(address);
        info.Environment[KeyVariable] = Convert.ToHexString(key); // not on the command line, where other users could read it
        return Process.Start(info) ?? throw new InvalidOperationException($"Could not start {host}.");
    }
}
