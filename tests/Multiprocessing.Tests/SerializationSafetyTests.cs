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
/// Shared references (without a cycle) arrive shared.
/// </summary>
public class SerializationSafetyTests
{
    private const string TooDeep = "nests deeper than 500 levels";
    private const string Cycle = "The value refers back to itself: a TreeNode holds, through its members, a reference to itself (a cycle";

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

    private static void AssertTooDeep(Exception e) => AssertRefused(e, TooDeep);

    /// <summary>A cycle is recognized as one when it is met again (not after 500 levels), and said so.</summary>
    private static void AssertCycle(Exception e) => AssertRefused(e, Cycle);

    private static void AssertRefused(Exception e, string why)
    {
        Assert.IsType<SerializationException>(e);
        var all = new List<Exception>();
        for (Exception? x = e; x is not null; x = x.InnerException) all.Add(x);
        Assert.Contains(all, x => x is SerializationException && x.Message.Contains(why, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_cycle_or_a_very_deep_value_as_an_argument_or_a_result_fails_that_call_and_the_pool_goes_on()
    {
        using var pool = new ProcessPool(2);
        AssertCycle(Assert.ThrowsAny<Exception>(() => pool.Map((TreeNode n) => n.Name, [Cyclic()])));
        AssertTooDeep(await Assert.ThrowsAnyAsync<Exception>(() => pool.ApplyAsync((Link l) => l.Value, Deep(100_000)).WaitAsync(TestSupport.Patience)));
        var tree = Cyclic();
        AssertCycle(Assert.ThrowsAny<Exception>(() => pool.Apply(() => tree.Children.Count)));
        // A result that cannot travel fails in the worker, which lives on.
        AssertCycle(await Assert.ThrowsAnyAsync<Exception>(() => pool.ApplyAsync(static () => Cyclic()).WaitAsync(TestSupport.Patience)));
        Assert.Equal([2, 3], pool.Map(static (int x) => x + 1, [1, 2]));
    }

    [Fact]
    public void A_cycle_or_a_very_deep_value_on_a_queue_or_a_pipe_is_refused_and_the_queue_or_pipe_goes_on()
    {
        using var queue = new ProcessQueue<TreeNode>();
        var cycle = Assert.ThrowsAny<Exception>(() => queue.Put(Cyclic()));
        AssertCycle(cycle);
        Assert.StartsWith("The queue item (TreeNode) cannot travel to another process:", cycle.Message); // named by its role like any other failure
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
        AssertCycle(Assert.ThrowsAny<Exception>(() => trees["loop"] = Cyclic()));
        trees["fine"] = new TreeNode { Name = "fine" };
        Assert.Equal("fine", trees["fine"].Name);
    }

    public sealed class Pair
    {
        public Link? First { get; set; }
        public Link? Second { get; set; }
        public List<Link> All { get; set; } = [];
    }

    [Fact]
    public async Task Shared_references_arrive_shared_in_every_place_data_travels()
    {
        static Pair Make()
        {
            var shared = new Link { Value = 7 };
            return new Pair { First = shared, Second = shared, All = [shared, new Link { Value = 8 }, shared] };
        }
        static bool Shared(Pair p) => ReferenceEquals(p.First, p.Second) && ReferenceEquals(p.All[0], p.First) && ReferenceEquals(p.All[2], p.First) && !ReferenceEquals(p.All[1], p.First);

        await using var pool = new ProcessPool(1);
        Assert.True(await pool.ApplyAsync(Shared, Make()).WaitAsync(TestSupport.Patience)); // argument
        Assert.True(Shared(await pool.ApplyAsync(Make).WaitAsync(TestSupport.Patience))); // result
        var captured = Make();
        Assert.True(await pool.ApplyAsync(() => Shared(captured)).WaitAsync(TestSupport.Patience)); // captured

        using var queue = new ProcessQueue<Pair>();
        queue.Put(Make());
        Assert.True(Shared(queue.Get()));

        await using var manager = await Manager.StartAsync();
        var pairs = manager.Dictionary<string, Pair>();
        pairs["p"] = Make();
        Assert.True(Shared(pairs["p"]));

        // A value of many objects (past the size where the numbering's table is shrunk afterwards), twice in a row.
        var many = Enumerable.Range(0, 10_000).Select(i => new Link { Value = i }).ToArray();
        Assert.Equal(10_000, pool.Map((Link l) => l.Value, many, chunkSize: 10_000).Distinct().Count());
        Assert.Equal(10_000, pool.Map((Link l) => l.Value, many, chunkSize: 10_000).Distinct().Count());

        // The same object in two items of one chunk is one object in the worker too.
        var one = new Link { Value = 1 };
        Assert.Equal([true, true], pool.Map((Link[] l) => ReferenceEquals(l[0], l[1]), [new[] { one, one }, new[] { one, one }], chunkSize: 2));
    }
}
