using System.Diagnostics;
using System.Text;

namespace Multiprocessing.Tests;

public class ShareableListTests
{
    private static bool Exists(string name) => File.Exists("/dev/shm/" + name);

    [Fact]
    public void The_layout_is_CPythons_byte_for_byte()
    {
        using var list = ShareableList.Create([42, 2.5, "hello", "12345678", "", new byte[] { (byte)'a', (byte)'b' }, true, null, -7L]);
        Assert.Equal("qd8s16s8s8sxxxxxxx?xxxxxx?xq", list.Format);
        var python = CPython.Run("""
            from multiprocessing import shared_memory
            sl = shared_memory.ShareableList([42, 2.5, "hello", "12345678", "", b"ab", True, None, -7])
            print(sl.shm.size, bytes(sl.shm.buf).hex(), sl.format)
            sl.shm.close()
            sl.shm.unlink()
            """, stdin: null);
        Assert.Equal($"{list.Shm.Size} {Convert.ToHexString(list.Shm.Span).ToLowerInvariant()} {list.Format}", python.Trim());
    }

    [Fact]
    public void A_list_made_here_is_read_and_changed_by_CPython_and_the_other_way_round()
    {
        using var list = ShareableList.Create([42, 2.5, "na\u00efve \u2615", new byte[] { 0, 1, (byte)'r', (byte)'a', (byte)'w' }, true, null]);
        Assert.Equal(6, list.Count);
        Assert.True(list.IsOwner);
        // The string is 10 bytes in UTF-8: its slot holds 16.
        Assert.Equal("qd16s8sxxxxxxx?xxxxxx?x", list.Format);
        Assert.Equal(16, list.GetSlotSize(2));
        var repr = list.ToString();

        var output = CPython.Run("""
            import sys
            from multiprocessing import shared_memory, resource_tracker
            sl = shared_memory.ShareableList(name=sys.argv[1])
            resource_tracker.unregister(sl.shm._name, "shared_memory")  # attached, not ours: 3.11 would unlink it at exit
            print(repr(sl))
            print(sl.format)
            assert list(sl) == [42, 2.5, "na\u00efve \u2615", b"\x00\x01raw", True, None], list(sl)
            sl[0] = 3.25      # an int slot takes a float
            sl[2] = "short"   # a shorter string
            sl[3] = b"xy"
            sl[4] = None
            sl[5] = 7         # a None slot takes an int
            try:
                sl[3] = b"123456789"
            except ValueError as e:
                print(e)
            print(sl.format)
            sl.shm.close()
            """, stdin: null, list.Name);
        var lines = output.Trim().Split('\n');
        Assert.Equal([repr, "qd16s8sxxxxxxx?xxxxxx?x", "bytes/str item exceeds available storage", "dd16s8sxxxxxx?xq"], lines);

        Assert.Equal(3.25, list.GetDouble(0));
        Assert.Equal(2.5, list.GetDouble(1));
        Assert.Equal("short", list.GetString(2));
        Assert.Equal("xy"u8.ToArray(), list.GetBytes(3));
        Assert.True(list.IsNull(4));
        Assert.Equal(7L, list.GetInt64(5));
        Assert.Equal("dd16s8sxxxxxx?xq", list.Format);

        list[0] = "abc";                // a number slot takes a string of up to 8 bytes
        list[2] = "na\u00efve \u2615";  // back to the full 10 bytes
        list[^1] = false;
        var again = CPython.Run("""
            import sys
            from multiprocessing import shared_memory, resource_tracker
            sl = shared_memory.ShareableList(name=sys.argv[1])
            resource_tracker.unregister(sl.shm._name, "shared_memory")
            print(ascii(list(sl)), sl.format, len(sl))
            sl.shm.close()
            """, stdin: null, list.Name);
        Assert.Equal("['abc', 2.5, 'na\\xefve \\u2615', b'xy', None, False] 8sd16s8sxxxxxx?xxxxxxxx? 6", again.Trim());
        Assert.True(Exists(list.Name), "Python's exit must not have unlinked the block");
    }

    [Fact]
    public async Task A_list_made_by_CPython_is_read_and_changed_here()
    {
        using var python = Process.Start(CPython.Start("""
            import sys
            from multiprocessing import shared_memory
            sl = shared_memory.ShareableList([7, 1.5, "hello world", b"\x01\x02", False, None, "x" * 20])
            print(sl.shm.name, flush=True)
            sys.stdin.readline()
            print(repr(list(sl)), flush=True)
            print(sl.format, flush=True)
            sl.shm.close()
            sl.shm.unlink()
            """))!;
        try
        {
            var name = (await python.StandardOutput.ReadLineAsync().WaitAsync(TestSupport.Patience))?.Trim();
            if (string.IsNullOrEmpty(name))
            {
                python.Kill();
                Assert.Fail("python did not print the list's name: " + await python.StandardError.ReadToEndAsync().WaitAsync(TestSupport.Patience));
            }
            using (var list = ShareableList.Attach(name))
            {
                Assert.False(list.IsOwner);
                Assert.Equal(7, list.Count);
                Assert.Equal("qd16s8sxxxxxxx?xxxxxx?x24s", list.Format);
                Assert.Equal(7L, list.GetInt64(0));
                Assert.Equal(1.5, list.GetDouble(1));
                Assert.Equal("hello world", list.GetString(2));
                Assert.Equal(new byte[] { 1, 2 }, list.GetBytes(3));
                Assert.False(list.GetBoolean(4));
                Assert.Null(list[5]);
                Assert.Equal(new string('x', 20), (string?)list[^1]);
                Assert.Equal(24, list.GetSlotSize(6));
                Assert.Equal($"ShareableList([7, 1.5, 'hello world', b'\\x01\\x02', False, None, '{new string('x', 20)}'], name='{name}')", list.ToString());

                list[0] = 8;                        // an int, stored as Python's int
                list[1] = "pi";                     // a float slot takes a short string
                list[2] = "hi";                     // shorter: the slot keeps its 16 bytes
                list[4] = true;
                list[5] = 2.75;                     // a None slot takes a float
                list[6] = new byte[] { 1, 2, 3 };   // a str slot takes bytes
                var tooLong = Assert.Throws<ArgumentException>(() => list[2] = new string('y', 17));
                Assert.Contains("index 2", tooLong.Message);
                Assert.Contains("16 bytes", tooLong.Message);
                Assert.Equal("hi", list.GetString(2));
            }
            python.StandardInput.WriteLine();
            python.StandardInput.Close();
            var rest = await python.StandardOutput.ReadToEndAsync().WaitAsync(TestSupport.Patience);
            await python.WaitForExitAsync().WaitAsync(TestSupport.Patience);
            Assert.True(python.ExitCode == 0, "python failed: " + await python.StandardError.ReadToEndAsync().WaitAsync(TestSupport.Patience));
            Assert.Equal("[8, 'pi', 'hi', b'\\x01\\x02', True, 2.75, b'\\x01\\x02\\x03']\nq8s16s8sxxxxxxx?d24s", rest.Trim());
            Assert.False(Exists(name));
        }
        finally
        {
            if (!python.HasExited) python.Kill();
        }
    }

    [Fact]
    public void A_worker_process_and_a_pool_task_change_the_same_list()
    {
        using var list = ShareableList.Create([1, "from parent", 0.5]);
        var worker = new WorkerProcess(() =>
        {
            list[0] = list.GetInt64(0) + 41;    // the list arrives attached by name
            list[1] = "from worker";
        });
        worker.Start();
        TestSupport.JoinOrFail(worker);
        Assert.Null(worker.Exception);
        Assert.Equal(42L, list.GetInt64(0));
        Assert.Equal("from worker", list.GetString(1));

        using var pool = new ProcessPool(1);
        var seen = pool.Apply((ShareableList shared) =>
        {
            shared[2] = shared.GetDouble(2) * 4;
            return shared.Count;
        }, list);
        Assert.Equal(3, seen);
        Assert.Equal(2.0, list.GetDouble(2));
    }

    [Fact]
    public void Values_that_do_not_fit_are_refused_in_the_users_terms()
    {
        using var list = ShareableList.Create([1, "abc", new byte[3]]);
        Assert.Equal(8, list.GetSlotSize(1));

        var tooLong = Assert.Throws<ArgumentException>(() => list[1] = "a string far longer than eight bytes");
        Assert.Contains("index 1", tooLong.Message);
        Assert.Contains("at most 8 bytes", tooLong.Message);
        Assert.Contains("placeholder", tooLong.Message);
        Assert.Equal("abc", list.GetString(1));
        var tooManyBytes = Assert.Throws<ArgumentException>(() => list[2] = new byte[9]);
        Assert.Contains("byte array for index 2", tooManyBytes.Message);

        var date = Assert.Throws<ArgumentException>(() => list[0] = DateTime.Now);
        Assert.Contains("index 0", date.Message);
        Assert.Contains("System.DateTime", date.Message);
        Assert.Contains("cannot hold", date.Message);
        Assert.Equal(1L, list.GetInt64(0));

        var atCreation = Assert.Throws<ArgumentException>(() => ShareableList.Create([1, 'c']));
        Assert.Contains("Item 1", atCreation.Message);
        Assert.Contains("System.Char", atCreation.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => list[0] = ulong.MaxValue);

        Assert.Throws<ArgumentOutOfRangeException>(() => list[3]);
        Assert.Throws<ArgumentOutOfRangeException>(() => list[-1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => list[^4]);
        var cast = Assert.Throws<InvalidCastException>(() => list.GetString(0));
        Assert.Contains("an integer", cast.Message);

        using var notAList = SharedMemory.Create(64);
        notAList.Span.Fill(0xff);
        var foreign = Assert.Throws<InvalidDataException>(() => ShareableList.Attach(notAList.Name));
        Assert.Contains("does not hold a ShareableList", foreign.Message);
    }

    [Fact]
    public void Items_compare_and_print_as_in_Python()
    {
        using var list = ShareableList.Create([1, 1.0, true, "1", new byte[] { (byte)'1' }, null, 2L]);
        Assert.Equal($"ShareableList([1, 1.0, True, '1', b'1', None, 2], name='{list.Name}')", list.ToString());
        Assert.Equal(3, list.CountOf(1));        // Python: 1 == 1.0 == True
        Assert.Equal(0, list.IndexOf(true));
        Assert.Equal(3, list.IndexOf("1"));
        Assert.Equal(4, list.IndexOf(new byte[] { (byte)'1' }));
        Assert.Equal(5, list.IndexOf(null));
        Assert.Equal(6, list.IndexOf(2.0));
        Assert.Equal(-1, list.IndexOf("x"));
        var hasNone = list.Contains(null);
        Assert.True(hasNone);
        Assert.Equal(2L, list[^1]);
        Assert.Equal(1L, list[^7]);

        list[0] = (short)5;
        Assert.IsType<long>(list[0]);
        list[1] = 1.5f;
        Assert.IsType<double>(list[1]);
        list[2] = "it's";
        list[3] = 1e16;
        list[4] = new byte[] { (byte)'"', (byte)'\'', 0x80 };
        list[5] = -0.0001;
        Assert.Equal($"ShareableList([5, 1.5, \"it's\", 1e+16, b'\"\\'\\x80', -0.0001, 2], name='{list.Name}')", list.ToString());
        Assert.Equal(new object?[] { 5L, 1.5, "it's", 1e16, null, -0.0001, 2L }, list.Select(item => item is byte[] ? null : item));
    }

    [Fact]
    public void An_empty_list_and_a_list_of_a_SharedMemoryManager()
    {
        string name;
        using (var empty = ShareableList.Create([]))
        {
            name = empty.Name;
            Assert.Empty(empty);
            Assert.Equal("", empty.Format);
            using var attached = ShareableList.Attach(name);
            Assert.Empty(attached);
            Assert.Equal($"ShareableList([], name='{name}')", attached.ToString());
        }
        Assert.False(Exists(name), "the creator's Dispose unlinks");

        using (var smm = new SharedMemoryManager())
        {
            var list = smm.ShareableList([1, "one"]);
            name = list.Name;
            Assert.Same(list.Shm, list.Shm);
            Assert.Equal(name, list.Shm.Name);
            Assert.True(Exists(name));
        }
        Assert.False(Exists(name), "the manager's Dispose unlinks its lists");
    }
}
