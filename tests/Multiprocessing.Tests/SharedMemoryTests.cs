using System.Diagnostics;

namespace Multiprocessing.Tests;

public class SharedMemoryTests
{
    private static bool Exists(string name) => File.Exists("/dev/shm/" + name);

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Create_gives_a_python_style_name_mode_0600_and_zeroed_memory_and_dispose_unlinks()
    {
        string name;
        using (var shm = SharedMemory.Create(10_000))
        {
            name = shm.Name;
            Assert.Matches("^psm_[0-9a-f]{8}$", name);
            Assert.Equal(10_000, shm.Size);
            Assert.True(shm.IsOwner);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode("/dev/shm/" + name));
            Assert.All(shm.Span.ToArray(), b => Assert.Equal(0, b));

            shm.Span[42] = 7;
            using (var other = SharedMemory.Attach("/" + name))
            {
                Assert.False(other.IsOwner);
                Assert.Equal(10_000, other.Size);
                Assert.Equal(7, other.Span[42]);
                other.Span[43] = 8;
            }
            Assert.True(Exists(name), "disposing an attached handle must not unlink");
            Assert.Equal(8, shm.Span[43]);
        }
        Assert.False(Exists(name));
        var e = Assert.Throws<FileNotFoundException>(() => SharedMemory.Attach(name));
        Assert.Contains(name, e.Message);
    }

    [Fact]
    public void Bad_sizes_names_and_use_after_dispose_are_explained()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedMemory.Create(0));
        var bad = Assert.Throws<ArgumentException>(() => SharedMemory.Create(10, "a/b"));
        Assert.Contains("'/'", bad.Message);
        Assert.Throws<ArgumentException>(() => SharedMemory.Attach(""));
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedArray<int>.Create(-1));

        var name = "mp_test_" + Guid.NewGuid().ToString("N")[..8];
        using (var shm = SharedMemory.Create(16, name))
        {
            Assert.Equal(name, shm.Name);
            var taken = Assert.Throws<IOException>(() => SharedMemory.Create(16, name));
            Assert.Contains("already exists", taken.Message);
            Assert.Throws<ArgumentOutOfRangeException>(() => shm.GetSpan(10, 7));
            Assert.Equal(6, shm.GetSpan(10, 6).Length);
            shm.Dispose();
            Assert.Throws<ObjectDisposedException>(() => shm.Span.Length);
        }
        Assert.False(Exists(name));
    }

    [Fact]
    public void SharedArray_and_SharedValue_view_the_same_memory_in_place()
    {
        using var a = SharedArray<double>.From([1.5, 2.5, 3.5]);
        Assert.Equal(3, a.Length);
        a[1] *= 2;
        Assert.Equal([1.5, 5.0, 3.5], a.ToArray());
        Assert.Throws<IndexOutOfRangeException>(() => a[3]);
        using (var view = SharedArray<double>.Attach(a.Name))
        {
            Assert.Equal(3, view.Length);
            view[2] = 9;
        }
        Assert.Equal(9, a[2]);

        using var v = SharedValue<long>.Create(40);
        Assert.Equal(42, v.Add(2));
        Assert.Equal(42, v.Exchange(7));
        Assert.Equal(7, v.CompareExchange(8, 7));
        Assert.Equal(8, v.Value);
    }

    [Fact]
    public void Ten_worker_processes_each_write_their_own_index_of_one_shared_array()
    {
        using var results = SharedArray<int>.Create(10);
        var workers = Enumerable.Range(0, 10).Select(i => new WorkerProcess(() => results[i] = (i + 1) * Environment.ProcessId)).ToList();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) TestSupport.JoinOrFail(w);
        for (var i = 0; i < 10; i++)
        {
            Assert.Null(workers[i].Exception);
            Assert.Equal((i + 1) * workers[i].Pid, results[i]);
        }
    }

    [Fact]
    public void A_shared_value_passed_to_workers_is_incremented_atomically()
    {
        using var counter = SharedValue<int>.Create();
        using var block = SharedMemory.Create(64);
        var workers = Enumerable.Range(0, 3).Select(_ => new WorkerProcess(() =>
        {
            for (var i = 0; i < 20_000; i++) counter.Add(1);
            block.Span[0] = 1; // a SharedMemory handle travels too
        })).ToList();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) TestSupport.JoinOrFail(w);
        Assert.All(workers, w => Assert.Null(w.Exception));
        Assert.Equal(60_000, counter.Read());
        Assert.Equal(1, block.Span[0]);
    }

    [Fact]
    public void Blocks_of_a_SIGKILLed_parent_and_of_one_that_exits_without_disposing_are_swept()
    {
        var path = TestSupport.TempFile();
        // The "parent" is a worker, so it can be killed without killing the test runner.
        var parent = new WorkerProcess(() =>
        {
            var shm = SharedMemory.Create(1 << 20);
            var array = SharedArray<long>.Create(1000);
            var gate = new ProcessLock();
            File.WriteAllText(path + ".tmp", $"{shm.Name} {array.Name} {gate.Name}");
            File.Move(path + ".tmp", path);
            Thread.Sleep(120_000);
        });
        parent.Start();
        Assert.True(TestSupport.Eventually(() => File.Exists(path), TestSupport.Patience), "the parent never created its blocks");
        var names = File.ReadAllText(path).Split(' ');
        File.Delete(path);
        Assert.All(names, n => Assert.True(Exists(n), $"{n} should exist while its owner lives"));
        parent.Kill();
        TestSupport.JoinOrFail(parent);
        Assert.True(TestSupport.Eventually(() => names.All(n => !Exists(n)), TimeSpan.FromSeconds(5)),
            $"left in /dev/shm 5 s after the owner was SIGKILLed: {string.Join(", ", names.Where(Exists))}");

        var leaky = new WorkerProcess(() => File.WriteAllText(path, SharedMemory.Create(100).Name));
        leaky.Start();
        TestSupport.JoinOrFail(leaky);
        Assert.Null(leaky.Exception);
        var leaked = File.ReadAllText(path);
        File.Delete(path);
        Assert.True(TestSupport.Eventually(() => !Exists(leaked), TimeSpan.FromSeconds(5)), $"{leaked} outlived its owner's normal exit");
    }


    [Fact]
    public void A_block_made_here_is_read_and_written_by_CPython()
    {
        using var shm = SharedMemory.Create(4096);
        shm.Span[..5].Fill(0xAB);
        var output = CPython.Run("""
            import sys
            from multiprocessing import shared_memory, resource_tracker
            shm = shared_memory.SharedMemory(name=sys.argv[1])
            resource_tracker.unregister(shm._name, "shared_memory")  # attached, not ours: 3.11 would unlink it at exit
            print(shm.size, bytes(shm.buf[:5]).hex())
            shm.buf[5:10] = b"hello"
            shm.close()
            """, stdin: null, shm.Name);
        Assert.Equal("4096 ababababab", output.Trim());
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(shm.Span[5..10]));
    }

    [Fact]
    public async Task A_block_made_by_CPython_attaches_here_by_name()
    {
        var psi = CPython.Start("""
            import sys
            from multiprocessing import shared_memory
            shm = shared_memory.SharedMemory(create=True, size=1000)
            shm.buf[:4] = bytes([1, 2, 3, 4])
            print(shm.name, flush=True)
            sys.stdin.readline()
            print(bytes(shm.buf[4:8]).hex(), flush=True)
            shm.close()
            shm.unlink()
            """);
        using var python = Process.Start(psi)!;
        try
        {
            var name = (await python.StandardOutput.ReadLineAsync().WaitAsync(TestSupport.Patience))?.Trim();
            if (string.IsNullOrEmpty(name))
            {
                python.Kill();
                Assert.Fail("python did not print the block's name: " + await python.StandardError.ReadToEndAsync().WaitAsync(TestSupport.Patience));
            }
            using (var shm = SharedMemory.Attach(name))
            {
                Assert.Equal(1000, shm.Size);
                Assert.Equal([1, 2, 3, 4], shm.Span[..4].ToArray());
                shm.Span[4..8].Fill(9);
                using var asInts = SharedArray<int>.Attach(name);
                Assert.Equal(250, asInts.Length);
            }
            python.StandardInput.WriteLine();
            python.StandardInput.Close();
            var rest = await python.StandardOutput.ReadToEndAsync().WaitAsync(TestSupport.Patience);
            await python.WaitForExitAsync().WaitAsync(TestSupport.Patience);
            Assert.Equal("09090909", rest.Trim());
            Assert.Equal(0, python.ExitCode);
            Assert.False(Exists(name));
        }
        finally
        {
            if (!python.HasExited) python.Kill();
        }
    }

    [Fact]
    public void A_SharedMemoryManager_unlinks_every_block_it_made_when_disposed()
    {
        string[] names;
        using (var smm = new SharedMemoryManager())
        {
            var block = smm.SharedMemory(128);
            var numbers = smm.Array<double>(1_000);
            var counter = smm.Value(41L);
            names = [block.Name, numbers.Name, counter.Name];
            Assert.Equal(3, smm.Count);
            Assert.All(names, n => Assert.True(File.Exists($"/dev/shm/{n}"), n));

            // A worker attaches to them while the scope lives.
            var p = new WorkerProcess(() => { numbers[999] = 2.5; counter.Value++; });
            p.Start();
            TestSupport.JoinOrFail(p);
            Assert.Equal(2.5, numbers[999]);
            Assert.Equal(42L, counter.Value);
        }
        Assert.All(names, n => Assert.False(File.Exists($"/dev/shm/{n}"), n));
        var disposed = new SharedMemoryManager();
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disposed.SharedMemory(16));
    }
}
