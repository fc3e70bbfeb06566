namespace Multiprocessing.Tests;

public abstract class Animal
{
    public string Name { get; set; } = "";
}

public class Dog : Animal
{
    public string Breed { get; set; } = "";
    public string Bark() => $"{Name} the {Breed} says woof";
}

public sealed class Cat : Animal
{
    public int Lives { get; set; } = 9;
}

/// <summary>Counts its constructions: a value of it refused from the network must never be built.</summary>
public sealed class Tripwire : Animal
{
    public static int Constructed;
    public Tripwire() => Interlocked.Increment(ref Constructed);
}

public interface IShape
{
    double Area();
}

public sealed record Circle(double Radius) : IShape
{
    public double Area() => Math.PI * Radius * Radius;
}

public sealed record Square(double Side) : IShape
{
    public double Area() => Side * Side;
}

public sealed record Label(string Text, int Size);

/// <summary>
/// Values keep their runtime type wherever the declared type is wider (object, an interface, an abstract or
/// unsealed class), as pickle keeps Python's: arguments, results, captured values, queue and pipe items, manager
/// values. From a manager, only types the process allowed are created by name.
/// </summary>
public class FidelityTests
{
    private static readonly TimeSpan Patience = TestSupport.Patience;

    private static string Describe(Animal a) => a switch
    {
        Dog d => d.Bark(),
        Cat c => $"{c.Name} has {c.Lives} lives",
        _ => $"plain {a.GetType().Name}",
    };

    [Fact]
    public async Task Arguments_and_results_keep_their_runtime_types()
    {
        await using var pool = new ProcessPool(1);
        Animal[] pets = [new Dog { Name = "Rex", Breed = "collie" }, new Cat { Name = "Tom", Lives = 7 }];
        Assert.Equal(["Rex the collie says woof", "Tom has 7 lives"], pool.Map(Describe, pets, chunkSize: 1));
        Assert.Equal("Rex the collie says woof", await pool.ApplyAsync(Describe, pets[0]).WaitAsync(Patience));

        var shapes = pool.Map((double r) => r < 2 ? (IShape)new Circle(r) : new Square(r), [1.0, 3.0]);
        Assert.Equal([typeof(Circle), typeof(Square)], shapes.Select(s => s.GetType()));
        Assert.Equal(9.0, shapes[1].Area());

        var record = pool.Apply(() => (object)new Label("hello", 12));
        Assert.Equal(new Label("hello", 12), Assert.IsType<Label>(record));

        object[] mixed = [5, 5L, (short)5, 2.5, 2.5f, 7.5m, 'c', "text", true, new DateTime(2026, 11, 30, 1, 2, 3, DateTimeKind.Utc), Guid.Empty, TimeSpan.FromSeconds(3), new Label("x", 1), new[] { 1, 2 }];
        var back = pool.Apply((object[] values) => values, mixed);
        Assert.Equal(mixed.Select(v => v.GetType()), back.Select(v => v.GetType()));
        Assert.Equal(mixed.Take(13), back.Take(13));
        Assert.Equal([1, 2], (int[])back[13]);
    }

    [Fact]
    public void A_captured_value_keeps_its_runtime_type()
    {
        using var pool = new ProcessPool(1);
        Animal pet = new Dog { Name = "Fido", Breed = "beagle" };
        object boxed = new Label("captured", 3);
        Assert.Equal("Fido the beagle says woof|Label", pool.Apply(() => Describe(pet) + "|" + boxed.GetType().Name));
    }

    [Fact]
    public void Queue_and_pipe_items_keep_their_runtime_types()
    {
        using var animals = new ProcessQueue<Animal>();
        using var anything = new ProcessQueue<object>();
        var (left, right) = Pipe.Create<IShape>();
        var p = new WorkerProcess(() =>
        {
            animals.Put(new Dog { Name = "Max", Breed = "pug" });
            anything.Put(new Label("queued", 4));
            anything.Put(42);
            right.Send(new Circle(2));
        });
        p.Start();
        Assert.Equal("Max the pug says woof", Describe(animals.Get()));
        Assert.Equal(new Label("queued", 4), anything.Get());
        Assert.IsType<int>(anything.Get());
        Assert.Equal(new Circle(2), left.Receive());
        TestSupport.JoinOrFail(p);
        Assert.Equal(0, p.ExitCode);
        left.Dispose();
        right.Dispose();
    }

    [Fact]
    public async Task A_manager_creates_a_wider_type_only_when_the_process_allowed_it()
    {
        await using var manager = await Manager.StartAsync();
        var pets = manager.Dictionary<string, Animal>("pets");

        RemoteTypes.Allow<Cat>();
        pets["tom"] = new Cat { Name = "Tom", Lives = 3 };
        Assert.Equal("Tom has 3 lives", Describe(pets["tom"]));

        pets["trap"] = new Tripwire { Name = "trap" };
        var constructed = Volatile.Read(ref Tripwire.Constructed);
        var e = Assert.Throws<SerializationException>(() => pets["trap"]);
        Assert.Contains($"A value of type {typeof(Tripwire).FullName} arrived from a manager as a {typeof(Animal).FullName}", e.Message);
        Assert.Contains("RemoteTypes.Allow<Tripwire>()", e.Message);
        Assert.Equal(constructed, Volatile.Read(ref Tripwire.Constructed)); // refused before any of its code ran

        // Values of the exact declared type need no permission.
        var labels = manager.Dictionary<string, Label>();
        labels["a"] = new Label("exact", 1);
        Assert.Equal(new Label("exact", 1), labels["a"]);
    }

    [Fact]
    public void A_type_name_that_crossed_a_socket_never_loads_an_assembly()
    {
        // Bytes as a peer could send them: a value of 'object' naming a type of an assembly this process has not loaded.
        const string assembly = "System.Formats.Tar";
        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name == assembly);
        var body = new System.Buffers.ArrayBufferWriter<byte>();
        var inner = new MessagePack.MessagePackWriter(body);
        inner.Write($"System.Formats.Tar.PaxTarEntry, {assembly}");
        inner.WriteMapHeader(0);
        inner.Flush();
        var bytes = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePack.MessagePackWriter(bytes);
        writer.WriteExtensionFormatHeader(new MessagePack.ExtensionHeader(RuntimeTypes.ExtensionCode, (uint)body.WrittenCount));
        writer.WriteRaw(body.WrittenSpan);
        writer.Flush();

        var untrusted = MessagePackObjectSerializer.Options.WithSecurity(MessagePack.MessagePackSecurity.UntrustedData);
        var e = Assert.ThrowsAny<Exception>(() => MessagePack.MessagePackSerializer.Deserialize<object>(bytes.WrittenMemory, untrusted));
        Assert.Contains("this process cannot load that type", TravelErrors.Innermost(e).Message);
        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name == assembly);
    }
}
