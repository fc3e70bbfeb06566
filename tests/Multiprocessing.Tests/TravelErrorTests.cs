namespace Multiprocessing.Tests;

public sealed class Secretive
{
    private readonly int _code;
    public Secretive(int secret) => _code = secret;
    public int Reveal() => _code;
}

public sealed record Box(string Label, object Payload);

public sealed record WithCallback(string Name, Func<int, int> Callback);

public sealed record Outer(string Name, Inner Inner);

public sealed record Inner(int Size, object Handle);

/// <summary>
/// A value that cannot travel fails with the library's SerializationException, whose message names its role, its
/// type, the member path that failed and what to do, in the user's terms; the serializer's error is the inner one.
/// </summary>
public class TravelErrorTests
{
    private static readonly TimeSpan Patience = TestSupport.Patience;

    [Fact]
    public void A_captured_HttpClient_names_the_variable_and_says_to_create_it_in_the_worker()
    {
        using var pool = new ProcessPool(1);
        using var http = new HttpClient();
        var e = Assert.Throws<SerializationException>(() => pool.Apply(() => http.Timeout.TotalSeconds));
        Assert.StartsWith($"The captured variable 'http' ({typeof(HttpClient).FullName}, captured by a lambda in {typeof(TravelErrorTests).FullName}) cannot travel to another process: " +
            "an HTTP client holds this process's connections. Open or create it inside the worker instead", e.Message);
        Assert.DoesNotContain("resolver", e.Message);
    }

    [Fact]
    public async Task A_type_without_a_usable_constructor_is_named_with_the_fix()
    {
        await using var pool = new ProcessPool(1);
        var e = await Assert.ThrowsAsync<SerializationException>(() => pool.ApplyAsync((Secretive s) => s.Reveal(), new Secretive(7)).WaitAsync(Patience));
        Assert.StartsWith("The argument (Secretive) cannot travel to another process: Secretive has no constructor the serializer can call.", e.Message);
        Assert.Contains("Give it a public parameterless constructor, or a public constructor whose parameters are named after its public properties.", e.Message);
        Assert.DoesNotContain("matched constructor", e.Message);
    }

    [Fact]
    public async Task A_result_that_cannot_travel_is_called_the_result()
    {
        await using var pool = new ProcessPool(1);
        var e = await Assert.ThrowsAsync<SerializationException>(() => pool.ApplyAsync(() => new Box("made in the worker", new MemoryStream([1, 2]))).WaitAsync(Patience));
        Assert.StartsWith("The result (Box) cannot travel to another process: at Box.Payload: it holds a MemoryStream: a stream is an open handle in this process.", e.Message);
        Assert.Equal(7, await pool.ApplyAsync(() => 7).WaitAsync(Patience)); // the worker goes on

        var returned = await pool.ApplyAsync(() => new InvalidOperationException("returned, not thrown")).WaitAsync(Patience);
        Assert.Equal("returned, not thrown", returned.Message); // an exception as a value travels with its message
    }

    [Fact]
    public void A_map_item_that_cannot_travel_is_named_by_its_index_and_member_path()
    {
        using var pool = new ProcessPool(1);
        using var stream = new MemoryStream();
        Outer[] items = [new("a", new Inner(1, "fine")), new("b", new Inner(2, stream))];
        var e = Assert.Throws<SerializationException>(() => pool.Map((Outer o) => o.Name, items, chunkSize: 2));
        Assert.Equal("Item 1 of the Map (Outer) cannot travel to another process: at Outer.Inner → Inner.Handle: it holds a MemoryStream: " +
            "a stream is an open handle in this process. Send the bytes (a byte[]) or a path, and open the stream on the other side.", e.Message);
    }

    [Fact]
    public void Queue_and_pipe_items_fail_with_SerializationException_and_the_queue_goes_on()
    {
        using var queue = new ProcessQueue<Box>();
        using var stream = new MemoryStream();
        var e = Assert.Throws<SerializationException>(() => queue.Put(new Box("s", stream)));
        Assert.StartsWith("The queue item (Box) cannot travel to another process: at Box.Payload: it holds a MemoryStream", e.Message);

        using var callbacks = new ProcessQueue<WithCallback>();
        var d = Assert.Throws<SerializationException>(() => callbacks.Put(new WithCallback("f", x => x + 1)));
        Assert.StartsWith("The queue item (WithCallback) cannot travel to another process:", d.Message);
        Assert.Equal("The queue item (WithCallback) cannot travel to another process: at WithCallback.Callback: it holds a delegate. " +
            "A function travels only as the function of a call; pass the data it needs instead.", d.Message);

        queue.Put(new Box("ok", 5));
        Assert.Equal(new Box("ok", 5), queue.Get());

        var (left, right) = Pipe.Create<Box>();
        var p = Assert.Throws<SerializationException>(() => left.Send(new Box("s", stream)));
        Assert.StartsWith("The message (Box) cannot travel to another process:", p.Message);
        left.Send(new Box("ok", 1));
        Assert.Equal(new Box("ok", 1), right.Receive());
        left.Dispose();
        right.Dispose();
    }
}
