namespace Multiprocessing.Tests;

public sealed class TreeNode
{
    public string Name { get; set; } = "";
    public TreeNode? Parent { get; set; }
    public List<TreeNode> Children { get; set; } = [];
}

/// <summary>A positional record with a link that can close a cycle (records have no parameterless constructor).</summary>
public sealed record Person(string Name)
{
    public Person? Friend { get; set; }
}

/// <summary>A doubly linked node: every link is a cycle (Next.Prev is the node itself).</summary>
public class Twin
{
    public int Value { get; init; }
    public Twin? Next { get; set; }
    public Twin? Prev { get; set; }
    public object? Tag { get; set; }
}

public sealed class Link
{
    public int Value { get; set; }
    public Link? Next { get; set; }
}

/// <summary>
/// No value can crash the process that sends it: a cycle or a 100,000-deep list once ended the caller with
/// "Stack overflow." (exit 134) inside the serializer. Cycles through the application's own classes now arrive as
/// cycles (as pickle's do); a cycle that cannot be rebuilt (through a collection alone) and a too-deep value are a
/// SerializationException, and everything goes on. Shared references arrive shared.
/// </summary>
public class SerializationSafetyTests
{
    private const string TooDeep = "nests deeper than 500 levels";
    private const string Cycle = "The value refers back to itself through a List<Object> (a cycle), and a List<Object> is built from its contents after them";

    private static TreeNode Cyclic()
    {
        var root = new TreeNode { Name = "root" };
        root.Children.Add(new TreeNode { Name = "child", Parent = root });
        return root;
    }

    /// <summary>Whether <paramref name="root"/> is the tree <see cref="Cyclic"/> made, with its parent link closing the cycle.</summary>
    private static bool IsCyclic(TreeNode root) =>
        root.Name == "root" && root.Parent is null && root.Children is [{ Name: "child" } child] && ReferenceEquals(child.Parent, root);

    /// <summary>A list that holds itself: a cycle that closes only through a collection, which is built after its items.</summary>
    private static List<object> SelfList()
    {
        var list = new List<object> { 1 };
        list.Add(list);
        return list;
    }

    /// <summary>A ring of three doubly linked nodes, one tagged with the ring's first node (a cycle through an object member).</summary>
    private static Twin Ring()
    {
        var a = new Twin { Value = 1 };
        var b = new Twin { Value = 2 };
        var c = new Twin { Value = 3, Tag = a };
        (a.Next, b.Next, c.Next) = (b, c, a);
        (a.Prev, b.Prev, c.Prev) = (c, a, b);
        return a;
    }

    private static bool IsRing(Twin a) =>
        a is { Value: 1, Next: { Value: 2, Next: { Value: 3 } c } b } && ReferenceEquals(c.Next, a) && ReferenceEquals(a.Prev, c)
        && ReferenceEquals(b.Prev, a) && ReferenceEquals(c.Prev, b) && ReferenceEquals(c.Tag, a);

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
    public async Task Cycles_through_the_applications_classes_arrive_as_cycles_in_arguments_results_and_captures()
    {
        await using var pool = new ProcessPool(2);
        Assert.Equal([true, true], pool.Map((TreeNode n) => IsCyclic(n), [Cyclic(), Cyclic()]));
        Assert.True(IsCyclic(await pool.ApplyAsync(static () => Cyclic()).WaitAsync(TestSupport.Patience))); // result
        var tree = Cyclic();
        Assert.True(await pool.ApplyAsync(() => IsCyclic(tree)).WaitAsync(TestSupport.Patience)); // captured
        Assert.True(IsRing(pool.Apply((Twin t) => t, Ring()))); // argument and result, a ring with an object member
        Assert.True(IsRing((Twin)pool.Apply(static () => (object)Ring()))); // declared object: the runtime type and the cycle both kept

        var ann = new Person("Ann");
        ann.Friend = new Person("Bob") { Friend = ann };
        var back = pool.Apply((Person p) => p, ann); // a positional record: created without its constructor, as pickle does
        Assert.True(back is { Name: "Ann", Friend: { Name: "Bob" } bob } && ReferenceEquals(bob.Friend, back));
    }

    [Fact]
    public async Task A_cycle_that_cannot_be_rebuilt_or_a_very_deep_value_fails_that_call_and_the_pool_goes_on()
    {
        using var pool = new ProcessPool(2);
        AssertCycle(Assert.ThrowsAny<Exception>(() => pool.Map((List<object> l) => l.Count, [SelfList()])));
        AssertTooDeep(await Assert.ThrowsAnyAsync<Exception>(() => pool.ApplyAsync((Link l) => l.Value, Deep(100_000)).WaitAsync(TestSupport.Patience)));
        var list = SelfList();
        AssertCycle(Assert.ThrowsAny<Exception>(() => pool.Apply(() => list.Count)));
        // A result that cannot travel fails in the worker, which lives on.
        AssertCycle(await Assert.ThrowsAnyAsync<Exception>(() => pool.ApplyAsync(static () => SelfList()).WaitAsync(TestSupport.Patience)));
        Assert.Equal([2, 3], pool.Map(static (int x) => x + 1, [1, 2]));
    }

    [Fact]
    public void Cycles_arrive_through_a_queue_and_a_pipe_and_a_cycle_that_cannot_be_rebuilt_or_a_very_deep_value_is_refused()
    {
        using var queue = new ProcessQueue<TreeNode>();
        queue.Put(Cyclic());
        Assert.True(IsCyclic(queue.Get()));
        using var objects = new ProcessQueue<object>();
        var cycle = Assert.ThrowsAny<Exception>(() => objects.Put(SelfList()));
        AssertCycle(cycle);
        Assert.StartsWith("The queue item (List<Object>) cannot travel to another process:", cycle.Message); // named by its role like any other failure
        objects.Put(Ring());
        Assert.True(IsRing((Twin)objects.Get()));

        var (left, right) = Pipe.Create<Link>();
        using (left)
        using (right)
        {
            AssertTooDeep(Assert.ThrowsAny<Exception>(() => left.Send(Deep(100_000))));
            left.Send(Deep(3));
            Assert.Equal(2, right.Receive().Value);
        }
        var (send, receive) = Pipe.Create<Twin>();
        using (send)
        using (receive)
        {
            send.Send(Ring());
            Assert.True(IsRing(receive.Receive()));
        }
    }

    [Fact]
    public async Task A_cycle_set_in_a_manager_dictionary_arrives_as_a_cycle_and_one_that_cannot_be_rebuilt_is_refused()
    {
        await using var manager = await Manager.StartAsync();
        var trees = manager.Dictionary<string, TreeNode>();
        trees["loop"] = Cyclic();
        Assert.True(IsCyclic(trees["loop"]));
        var lists = manager.Dictionary<string, List<object>>();
        AssertCycle(Assert.ThrowsAny<Exception>(() => lists["loop"] = SelfList()));
        lists["fine"] = [1];
        Assert.Single(lists["fine"]);
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
