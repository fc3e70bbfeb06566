namespace Multiprocessing.Tests;

public sealed class TreeNode
{
    public string Name { get; set; } = "";
    public TreeNode? Parent { get; set; }
    public List<TreeNode> Children { get; set; } = [];
}

public sealed class Link
{
    public int Value { get; set; }
    public Link? Next { get; set; }
}

/// <summary>
/// No value can crash the process that sends it: a cycle or a 100,000-deep list once ended the caller with
/// "Stack overflow." (exit 134) inside the serializer. Now it is a SerializationException and everything goes on.
/// </summary>
public class SerializationSafetyTests
{
    private const string TooDeep = "nests deeper than 500 levels";

    private static TreeNode Cyclic()
    {
        var root = new TreeNode { Name = "root" };
        root.Children.Add(new TreeNode { Name = "child", Parent = root });
        return root;
    }

    private static Link Deep(int length)
    {
        Link? head = null;
        for (var i = 0; i < length; i++) head = new Link { Value = i, Next = head };
        return head!;
    }

    private static void AssertTooDeep(Exception e)
    {
        var all = new List<Exception>();
        for (Exception? x = e; x is not null; x = x.InnerException) all.Add(x);
        Assert.Contains(all, x => x is SerializationException && x.Message.Contains(TooDeep, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_cycle_or_a_very_deep_value_as_an_argument_or_a_result_fails_that_call_and_the_pool_goes_on()
    {
        using var pool = new ProcessPool(2);
        AssertTooDeep(Assert.ThrowsAny<Exception>(() => pool.Map((TreeNode n) => n.Name, [Cyclic()])));
        AssertTooDeep(await Assert.ThrowsAnyAsync<Exception>(() => pool.ApplyAsync((Link l) => l.Value, Deep(100_000)).WaitAsync(TestSupport.Patience)));
        var tree = Cyclic();
        AssertTooDeep(Assert.ThrowsAny<Exception>(() => pool.Apply(() => tree.Children.Count)));
        // A result that cannot travel fails in the worker, which lives on.
        AssertTooDeep(await Assert.ThrowsAnyAsync<Exception>(() => pool.ApplyAsync(static () => Cyclic()).WaitAsync(TestSupport.Patience)));
        Assert.Equal([2, 3], pool.Map(static (int x) => x + 1, [1, 2]));
    }

    [Fact]
    public void A_cycle_or_a_very_deep_value_on_a_queue_or_a_pipe_is_refused_and_the_queue_or_pipe_goes_on()
    {
        using var queue = new ProcessQueue<TreeNode>();
        AssertTooDeep(Assert.ThrowsAny<Exception>(() => queue.Put(Cyclic())));
        queue.Put(new TreeNode { Name = "fine" });
        Assert.Equal("fine", queue.Get().Name);

        var (left, right) = Pipe.Create<Link>();
        using (left)
        using (right)
        {
            AssertTooDeep(Assert.ThrowsAny<Exception>(() => left.Send(Deep(100_000))));
            left.Send(Deep(3));
            Assert.Equal(2, right.Receive().Value);
        }
    }

    [Fact]
    public async Task A_cycle_set_in_a_manager_dictionary_is_refused_and_the_manager_goes_on()
    {
        await using var manager = await Manager.StartAsync();
        var trees = manager.Dictionary<string, TreeNode>();
        AssertTooDeep(Assert.ThrowsAny<Exception>(() => trees["loop"] = Cyclic()));
        trees["fine"] = new TreeNode { Name = "fine" };
        Assert.Equal("fine", trees["fine"].Name);
    }
}
