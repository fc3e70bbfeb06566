using System.Diagnostics;
using System.Security.Authentication;
using System.Security.Cryptography;

namespace Multiprocessing.Tests;

/// <summary>
/// Listener, Connection.Connect and Connection.Wait (Python's multiprocessing.connection). The processes on the other
/// end are separate programs (examples/Connections started in client mode with Process.Start): they are not workers
/// of this process, and know nothing of it but the address and the key.
/// </summary>
public class ConnectionTests
{
    private static readonly TimeSpan Patience = TestSupport.Patience;

    public static TheoryData<string?> Addresses => new()
    {
        null,          // a Unix socket in a private folder
        "localhost:0", // TCP on loopback, a free port
    };

    [Theory]
    [MemberData(nameof(Addresses))]
    public async Task A_client_in_an_unrelated_process_connects_with_the_right_key(string? address)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        await using var listener = new Listener<string>(address, key);
        if (address is not null) Assert.Matches(@"^127\.0\.0\.1:[1-9][0-9]*$", listener.Address);

        using var client = StartClient(listener.Address, key);
        using var limit = new CancellationTokenSource(Patience);
        using var server = await listener.AcceptAsync(limit.Token);
        Assert.True(server.TryReceive(out var hello, Patience), "the client sent nothing");
        Assert.Equal($"hello from pid {client.Id}", hello); // the other process, not this one
        Assert.NotEqual(Environment.ProcessId, client.Id);
        server.Send(hello.ToUpperInvariant());

        var (exitCode, output, errors) = await Finish(client);
        Assert.True(exitCode == 0, $"the client exited with {exitCode}:\n{output}\n{errors}");
        Assert.Contains($"got: HELLO FROM PID {client.Id}", output);
        // After the client exited, the stream ends; Poll says so (as Python's poll does) and Receive throws.
        Assert.True(server.Poll(Patience));
        Assert.Throws<EndOfStreamException>(() => server.Receive());
        Assert.NotNull(listener.LastAccepted);
        if (address is not null) Assert.StartsWith("127.0.0.1:", listener.LastAccepted);
    }

    [Theory]
    [MemberData(nameof(Addresses))]
    public async Task A_client_in_an_unrelated_process_with_a_wrong_key_is_refused_on_both_sides(string? address)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        await using var listener = new Listener<string>(address, key);

        using var client = StartClient(listener.Address, RandomNumberGenerator.GetBytes(32));
        using var limit = new CancellationTokenSource(Patience);
        var refused = await Assert.ThrowsAsync<AuthenticationException>(() => listener.AcceptAsync(limit.Token).AsTask());
        Assert.Contains("auth key", refused.Message);

        var (exitCode, output, errors) = await Finish(client);
        Assert.True(exitCode == 3, $"the client exited with {exitCode}, not 3 (refused):\n{output}\n{errors}");
        Assert.Contains("refused the auth key", errors);

        // The listener goes on: a client with the key is accepted next.
        using var good = Connection.Connect<string>(listener.Address, key);
        using var accepted = await listener.AcceptAsync(limit.Token);
        good.Send("after");
        Assert.Equal("after", accepted.Receive());
    }

    [Fact]
    public async Task A_listener_goes_on_after_a_refused_client_and_keys_on_one_side_only_are_refused()
    {
        var key = "correct horse battery staple"u8.ToArray();
        await using var listener = new Listener<int>("localhost:0", key);
        using var limit = new CancellationTokenSource(Patience);

        var wrong = Assert.Throws<AuthenticationException>(() => Connection.Connect<int>(listener.Address, "wrong"u8.ToArray()));
        Assert.Contains("refused the auth key", wrong.Message);
        await Assert.ThrowsAsync<AuthenticationException>(() => listener.AcceptAsync(limit.Token).AsTask());
        Assert.Throws<AuthenticationException>(() => Connection.Connect<int>(listener.Address)); // no key at all
        await Assert.ThrowsAsync<AuthenticationException>(() => listener.AcceptAsync(limit.Token).AsTask());

        using var client = await Connection.ConnectAsync<int>(listener.Address, key, cancellationToken: limit.Token);
        using var server = await listener.AcceptAsync(limit.Token);
        await client.SendAsync(42, limit.Token);
        Assert.Equal(42, await server.ReceiveAsync(limit.Token));
        server.Send(43);
        Assert.Equal(43, client.Receive());

        // Nothing listens: a clear error, not a hang.
        await using var closed = new Listener<int>();
        var gone = closed.Address;
        closed.Close();
        Assert.False(File.Exists(gone));
        Assert.Throws<MultiprocessingException>(() => Connection.Connect<int>(gone));
    }

    [Fact]
    public async Task Wait_returns_the_one_ready_connection_among_three()
    {
        var key = RandomNumberGenerator.GetBytes(16);
        await using var listener = new Listener<int>(null, key);
        using var limit = new CancellationTokenSource(Patience);
        var clients = new List<Connection<int>>();
        var servers = new List<Connection<int>>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                clients.Add(Connection.Connect<int>(listener.Address, key));
                servers.Add(await listener.AcceptAsync(limit.Token));
            }
            Assert.Empty(Connection.Wait(servers, TimeSpan.FromMilliseconds(50)));

            clients[1].Send(7);
            var ready = Connection.Wait(servers, Patience);
            Assert.Same(servers[1], Assert.Single(ready));
            Assert.Equal(7, servers[1].Receive());
            Assert.Empty(Connection.Wait(servers, TimeSpan.Zero));

            // The async twin, waiting first and woken by the send.
            var waiting = Connection.WaitAsync(servers, Patience, limit.Token).AsTask();
            await Task.Delay(50);
            Assert.False(waiting.IsCompleted);
            clients[2].Send(8);
            Assert.Same(servers[2], Assert.Single(await waiting));
            Assert.Equal(8, servers[2].Receive());

            // A peer that hung up is ready too: Receive would not wait (it throws EndOfStreamException).
            clients[0].Close();
            Assert.Same(servers[0], Assert.Single(Connection.Wait(servers, Patience)));
            Assert.Throws<EndOfStreamException>(() => servers[0].Receive());
        }
        finally
        {
            foreach (var c in clients.Concat(servers)) c.Dispose();
        }
    }

    [Fact]
    public void Wait_takes_pipes_queues_and_processes_together()
    {
        var (left, right) = Pipe.Create<string>();
        using var queue = new ProcessQueue<int>();
        var worker = new WorkerProcess(() => Thread.Sleep(200));
        try
        {
            worker.Start();
            // Nothing to read yet: the worker's exit is what ends the wait.
            var ready = Connection.Wait([left, queue, worker], Patience);
            Assert.Same(worker, Assert.Single(ready));

            queue.Put(1);
            right.Send("x");
            ready = Connection.Wait([left, queue, worker, left], Patience);
            Assert.Equal<object>([left, queue, worker], ready); // in the order given, each once
            Assert.Equal("x", left.Receive());
            Assert.Equal(1, queue.Get());
            Assert.Equal<object>([worker], Connection.Wait([left, queue, worker], TimeSpan.Zero));

            Assert.Throws<ArgumentException>(() => Connection.Wait(["not waitable"], TimeSpan.Zero));
            Assert.Throws<ArgumentException>(() => Connection.Wait([]));
            Assert.Empty(Connection.Wait([], TimeSpan.FromMilliseconds(10)));
            right.Close();
            Assert.Equal<object>([left], Connection.Wait([left], Patience));
        }
        finally
        {
            left.Dispose();
            right.Dispose();
            TestSupport.JoinOrFail(worker);
        }
    }

    [Fact]
    public void A_socket_connection_cannot_travel_to_a_worker_and_says_what_to_do()
    {
        var key = RandomNumberGenerator.GetBytes(16);
        using var listener = new Listener<int>("localhost:0", key);
        using var client = Connection.Connect<int>(listener.Address, key);
        var worker = new WorkerProcess(() => client.Send(1));
        var e = Assert.Throws<SerializationException>(() => worker.Start());
        Assert.Contains("Listener", e.Message);
        Assert.Contains("Address", e.Message);
    }

    /// <summary>Starts examples/Connections in client mode: a separate program that knows only the address and the key.</summary>
    private static Process StartClient(string address, byte[] key)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(ExampleDll("Connections"));
        info.ArgumentList.Add("client");
        info.ArgumentList.Add(address);
        info.Environment["CONNECTIONS_EXAMPLE_KEY"] = Convert.ToHexString(key);
        return Process.Start(info)!;
    }

    private static async Task<(int ExitCode, string Output, string Errors)> Finish(Process process)
    {
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(Patience);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"the client (pid {process.Id}) did not exit within {Patience.TotalSeconds} s");
        }
        return (process.ExitCode, await output, await errors);
    }

    /// <summary>examples/NAME/bin/Configuration/tfm/NAME.dll, built with the tests (see ExampleTests).</summary>
    private static string ExampleDll(string name)
    {
        var outputDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = outputDir.Name;
        var configuration = outputDir.Parent!.Name;
        var root = outputDir.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(root, "examples", name, "bin", configuration, tfm, name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} was not built; the test project references the example so that it is.");
        return dll;
    }
}
