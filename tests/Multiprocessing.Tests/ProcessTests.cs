using System.Net.Sockets;

namespace Multiprocessing.Tests;

public record Point(int X, string Label);

public class CustomErrorWithoutMessageConstructor : Exception
{
    public CustomErrorWithoutMessageConstructor(int code) : base($"custom failure {code}") { }
}

public class ProcessTests
{
    private readonly int _field = 5;

    private static string[] RuntimeSockets(int pid) =>
        [.. Directory.EnumerateFiles(Path.GetTempPath(), $"clr-debug-pipe-{pid}-*"), .. Directory.EnumerateFiles(Path.GetTempPath(), $"dotnet-diagnostic-{pid}-*")];

    [Fact]
    public void Workers_make_no_runtime_sockets_unless_asked_and_those_of_a_killed_worker_are_removed()
    {
        // By default a worker's runtime opens no diagnostic or debugger socket, so a killed one leaves none in /tmp.
        var worker = new WorkerProcess(() => Thread.Sleep(Timeout.Infinite));
        worker.Start(); // returns once the child has connected: its runtime has started
        Assert.Empty(RuntimeSockets(worker.Pid));
        worker.Kill();
        TestSupport.JoinOrFail(worker);

        // Asked for (to attach dotnet-trace or a debugger): they exist, and a killed worker's are removed.
        var scenario = new WorkerProcess(static () =>
        {
            Environment.SetEnvironmentVariable("MULTIPROCESSING_WORKER_DIAGNOSTICS", "1");
            Environment.SetEnvironmentVariable("MULTIPROCESSING_SPARE_WORKERS", "0");
            var inner = new WorkerProcess(() => Thread.Sleep(Timeout.Infinite));
            inner.Start();
            if (!TestSupport.Eventually(() => RuntimeSockets(inner.Pid).Length > 0, TimeSpan.FromSeconds(10)))
                throw new InvalidOperationException("MULTIPROCESSING_WORKER_DIAGNOSTICS=1, yet the worker's runtime made no diagnostic socket");
            inner.Kill();
            TestSupport.JoinOrFail(inner);
            if (!TestSupport.Eventually(() => RuntimeSockets(inner.Pid).Length == 0, TimeSpan.FromSeconds(10)))
                throw new InvalidOperationException("a killed worker's runtime sockets stayed: " + string.Join(", ", RuntimeSockets(inner.Pid)));
        });
        scenario.Start();
        TestSupport.JoinOrFail(scenario);
        Assert.Null(scenario.Exception);
    }

    [Fact]
    public void System_idle_time_is_read_and_never_goes_backwards()
    {
        // The spare keeper boots spares only when a core is idle; it reads this counter to know.
        // /proc/stat counts the whole machine, which may have more processors than this process may use.
        var processors = File.ReadLines("/proc/stat").Count(line => line.StartsWith("cpu", StringComparison.Ordinal) && char.IsDigit(line[3]));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var before = Platform.Current.SystemIdleTime();
        Thread.Sleep(300);
        var after = Platform.Current.SystemIdleTime();
        Assert.NotNull(before);
        Assert.NotNull(after);
        Assert.True(after >= before, $"idle time went backwards: {before} then {after}");
        var elapsed = clock.Elapsed;
        Assert.True(after - before <= elapsed * processors + TimeSpan.FromMilliseconds(20), $"more idle time than {processors} processors have in {elapsed}: {after - before}");
    }

    [Fact]
    public void SpareWorkers_is_a_checked_process_wide_setting_and_zero_still_starts_processes()
    {
        var before = WorkerProcess.SpareWorkers;
        try
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => WorkerProcess.SpareWorkers = -1);
            Assert.Throws<ArgumentOutOfRangeException>(() => WorkerProcess.SpareWorkers = 65);
            WorkerProcess.SpareWorkers = 0;
            Assert.Equal(0, WorkerProcess.SpareWorkers);
            var p = new WorkerProcess(() => { });
            p.Start();
            TestSupport.JoinOrFail(p);
            Assert.Equal(0, p.ExitCode);
        }
        finally
        {
            WorkerProcess.SpareWorkers = before;
        }
        Assert.Equal(before, WorkerProcess.SpareWorkers);
    }

    private static void WriteNumberAndText(string path, int number, Point point) => File.WriteAllText(path, $"{number}:{point.Label}:{Environment.ProcessId}");

    private static async Task WriteLater(string path, long number)
    {
        await Task.Delay(100);
        await File.WriteAllTextAsync(path, number.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void A_method_and_its_arguments_run_in_a_worker_as_Pythons_target_and_args()
    {
        var path = TestSupport.TempFile();
        var p = new WorkerProcess(WriteNumberAndText, path, 41, new Point(1, "label"));
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Equal(0, p.ExitCode);
        var parts = File.ReadAllText(path).Split(':');
        Assert.Equal(["41", "label"], parts[..2]);
        Assert.NotEqual(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), parts[2]);

        var later = new WorkerProcess(WriteLater, path, 7L); // an async target is awaited
        later.Start();
        TestSupport.JoinOrFail(later);
        Assert.Equal("7", File.ReadAllText(path));
        File.Delete(path);

        var count = Assert.Throws<ArgumentException>(() => new WorkerProcess(WriteNumberAndText, path, 41));
        Assert.StartsWith("WriteNumberAndText(String path, Int32 number, Point point) takes 3 argument(s); 2 were given.", count.Message);
        var type = Assert.Throws<ArgumentException>(() => new WorkerProcess(WriteNumberAndText, path, "41", new Point(1, "x")));
        Assert.StartsWith("Argument 2 of WriteNumberAndText(String path, Int32 number, Point point) is a String, which does not fit parameter 'number' (Int32).", type.Message);
    }

    [Fact]
    public void Closure_capturing_int_string_and_record_runs_in_another_process()
    {
        var path = TestSupport.TempFile();
        var number = 41;
        var text = "hello";
        var point = new Point(3, "p");
        var p = new WorkerProcess(() => File.WriteAllText(path, $"{Environment.ProcessId}:{number + 1}:{text}:{point.X}:{point.Label}"));
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Null(p.Exception);
        Assert.Equal(0, p.ExitCode);
        var parts = File.ReadAllText(path).Split(':');
        File.Delete(path);
        Assert.NotEqual(Environment.ProcessId.ToString(), parts[0]);
        Assert.Equal(p.Pid.ToString(), parts[0]);
        Assert.Equal(["42", "hello", "3", "p"], parts[1..]);
    }

    [Fact]
    public void Static_method_and_generic_method_and_nested_closure_run()
    {
        var path = TestSupport.TempFile();
        var p = new WorkerProcess(() => Generic(path, new List<int> { 1, 2, 3 }));
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Null(p.Exception);
        Assert.Equal("List`1:3", File.ReadAllText(path));

        var outer = 10;
        Func<int, int> addOuter = x => x + outer;
        var q = new WorkerProcess(() => File.WriteAllText(path, addOuter(5).ToString()));
        q.Start();
        TestSupport.JoinOrFail(q);
        Assert.Null(q.Exception);
        Assert.Equal("15", File.ReadAllText(path));
        File.Delete(path);
    }

    private static void Generic<T>(string path, T value) where T : System.Collections.ICollection =>
        File.WriteAllText(path, $"{typeof(T).Name}:{value.Count}");

    [Fact]
    public void Capturing_a_stream_is_refused_at_start_naming_the_member()
    {
        using var stream = new MemoryStream();
        var p = new WorkerProcess(() => stream.WriteByte(1));
        var e = Assert.Throws<SerializationException>(p.Start);
        Assert.Contains("stream", e.Message);
        Assert.Contains(typeof(MemoryStream).FullName!, e.Message);
        Assert.Equal(0, p.Pid);
    }

    [Fact]
    public void Capturing_a_socket_is_refused_at_start()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var p = new WorkerProcess(() => socket.Close());
        var e = Assert.Throws<SerializationException>(p.Start);
        Assert.Contains("socket", e.Message);
    }

    [Fact]
    public void Capturing_this_of_a_type_that_holds_a_stream_is_refused()
    {
        var holder = new StreamHolder();
        var e = Assert.Throws<SerializationException>(holder.MakeWorker().Start);
        Assert.Contains("this", e.Message);
    }

    private sealed class StreamHolder
    {
        private readonly Stream _s = new MemoryStream();
        public WorkerProcess MakeWorker() => new(() => _s.WriteByte(1));
    }

    [Fact]
    public void Exception_comes_home_as_its_own_type_with_the_remote_stack_trace()
    {
        var p = new WorkerProcess(() => ThrowInChild("bad input"));
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Equal(1, p.ExitCode);
        var e = Assert.IsType<ArgumentException>(p.Exception);
        Assert.Equal("bad input", e.Message);
        Assert.Contains(nameof(ThrowInChild), e.StackTrace);
    }

    private static void ThrowInChild(string message) => throw new ArgumentException(message);

    [Fact]
    public void Inner_exceptions_are_kept_and_unrebuildable_types_become_RemoteException()
    {
        var p = new WorkerProcess(() =>
        {
            try { throw new CustomErrorWithoutMessageConstructor(7); }
            catch (Exception e) { throw new InvalidOperationException("outer", e); }
        });
        p.Start();
        TestSupport.JoinOrFail(p);
        var e = Assert.IsType<InvalidOperationException>(p.Exception);
        var inner = Assert.IsType<RemoteException>(e.InnerException);
        Assert.Equal(typeof(CustomErrorWithoutMessageConstructor).FullName, inner.RemoteType);
        Assert.Equal("custom failure 7", inner.RemoteMessage);
        Assert.NotNull(inner.RemoteStackTrace);
    }

    [Fact]
    public void Capturing_this_whose_type_serializes_works()
    {
        var path = TestSupport.TempFile();
        var p = new WorkerProcess(() => File.WriteAllText(path, (_field * 2).ToString()));
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Null(p.Exception);
        Assert.Equal("10", File.ReadAllText(path));
        File.Delete(path);
    }

    public static TheoryData<string> CrashKinds => ["stackoverflow", "failfast", "sigkill", "segfault"];

    [Theory]
    [MemberData(nameof(CrashKinds))]
    public void Crash_is_named_with_exit_status_and_stderr_tail(string kind)
    {
        var p = new WorkerProcess(() => Crash(kind));
        p.Start();
        TestSupport.JoinOrFail(p);
        var e = Assert.IsType<WorkerCrashedException>(p.Exception);
        Assert.Equal(p.Pid, e.ProcessId);
        switch (kind)
        {
            case "stackoverflow":
                Assert.Equal(6, e.Signal);
                Assert.Contains(e.StandardErrorTail, l => l.Contains("Stack overflow") || l.Contains(nameof(Recurse)));
                break;
            case "failfast":
                Assert.Equal(6, e.Signal);
                Assert.Contains(e.StandardErrorTail, l => l.Contains("fail fast on purpose"));
                break;
            case "sigkill":
                Assert.Equal(9, e.Signal);
                Assert.Equal(-9, p.ExitCode);
                break;
            case "segfault":
                Assert.True(e.Signal is 11 or 6, $"signal {e.Signal}");
                break;
        }
        Assert.Equal(-e.Signal, p.ExitCode);
    }

    private static void Crash(string kind)
    {
        switch (kind)
        {
            case "stackoverflow": Recurse(0); break;
            case "failfast": Environment.FailFast("fail fast on purpose"); break;
            case "sigkill": TestSupport.SigKill(Environment.ProcessId); Thread.Sleep(10_000); break;
            case "segfault": TestSupport.NativeSegfault(); break;
        }
    }

    private static int Recurse(int depth) => depth == int.MaxValue ? depth : Recurse(depth + 1) + 1;

    [Fact]
    public void Exit_code_of_environment_exit_is_reported()
    {
        var p = new WorkerProcess(() => Environment.Exit(7));
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Equal(7, p.ExitCode);
        Assert.IsType<WorkerCrashedException>(p.Exception);
    }

    [Fact]
    public void Kill_and_terminate_end_a_running_child_with_python_exit_codes()
    {
        var a = new WorkerProcess(() => Thread.Sleep(60_000));
        var b = new WorkerProcess(() => Thread.Sleep(60_000));
        a.Start();
        b.Start();
        Assert.True(a.IsAlive);
        Assert.Contains(a, WorkerProcess.ActiveChildren());
        a.Kill();
        b.Terminate();
        TestSupport.JoinOrFail(a);
        TestSupport.JoinOrFail(b);
        Assert.False(a.IsAlive);
        Assert.Equal(-9, a.ExitCode);
        Assert.Equal(-15, b.ExitCode);
        Assert.Null(a.Exception);
        Assert.DoesNotContain(a, WorkerProcess.ActiveChildren());
    }

    [Fact]
    public async Task WaitForExitAsync_completes_and_Join_times_out_while_running()
    {
        var p = new WorkerProcess(() => Thread.Sleep(1500));
        Assert.Throws<InvalidOperationException>(() => p.Join());
        p.Start();
        Assert.False(p.Join(TimeSpan.FromMilliseconds(50)));
        Assert.Null(p.ExitCode);
        await p.WaitForExitAsync().WaitAsync(TestSupport.Patience);
        Assert.Equal(0, p.ExitCode);
        Assert.Throws<InvalidOperationException>(p.Start);
    }

    [Fact]
    public void Current_and_Parent_describe_the_worker_and_its_parent()
    {
        Assert.Null(WorkerProcess.Current);
        var path = TestSupport.TempFile();
        var p = new WorkerProcess(() => File.WriteAllText(path, $"{WorkerProcess.Current!.Name}|{WorkerProcess.Current.Pid}|{WorkerProcess.Parent!.Pid}|{WorkerProcess.Parent.IsAlive}")) { Name = "named-one" };
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Equal($"named-one|{p.Pid}|{Environment.ProcessId}|True", File.ReadAllText(path));
        File.Delete(path);
    }

    [Fact]
    public void Socket_folders_of_parents_that_were_killed_are_swept()
    {
        using var gone = System.Diagnostics.Process.Start("true")!;
        gone.WaitForExit();
        var stale = Path.Combine(Path.GetTempPath(), $"multiprocessing-{gone.Id}-DEADBEEF");
        Directory.CreateDirectory(stale);
        // A worker that starts a worker of its own opens a listener, and sweeps on the way.
        var p = new WorkerProcess(() =>
        {
            var inner = new WorkerProcess(() => { });
            inner.Start();
            inner.Join(TimeSpan.FromSeconds(60));
        });
        p.Start();
        TestSupport.JoinOrFail(p);
        Assert.Null(p.Exception);
        Assert.False(Directory.Exists(stale), $"{stale} was not swept");
    }

    [Fact]
    public void Child_dies_within_3_seconds_when_its_parent_is_SIGKILLed()
    {
        var path = TestSupport.TempFile();
        // The "parent" is itself a worker, so it can be killed without killing the test runner.
        var parent = new WorkerProcess(() =>
        {
            var child = new WorkerProcess(() => Thread.Sleep(120_000));
            child.Start();
            File.WriteAllText(path, child.Pid.ToString());
            Thread.Sleep(120_000);
        });
        parent.Start();
        Assert.True(TestSupport.Eventually(() => File.Exists(path) && File.ReadAllText(path).Length > 0, TestSupport.Patience), "grandchild never started");
        var grandchild = int.Parse(File.ReadAllText(path));
        File.Delete(path);
        Assert.True(TestSupport.ProcessExists(grandchild));
        parent.Kill();
        TestSupport.JoinOrFail(parent);
        Assert.True(TestSupport.Eventually(() => !TestSupport.ProcessExists(grandchild), TimeSpan.FromSeconds(3)), $"grandchild {grandchild} outlived its parent");
    }

    [Fact]
    public void At_its_parents_normal_exit_a_non_daemon_child_is_waited_for_and_a_daemon_child_is_ended()
    {
        using var items = new ProcessQueue<int>();
        var path = TestSupport.TempFile();
        // The "program" is itself a worker: its target returns while its children run, as a Main that returns would.
        var program = new WorkerProcess(() =>
        {
            var writer = new WorkerProcess(() =>
            {
                for (var i = 1; i <= 5; i++)
                {
                    Thread.Sleep(100);
                    items.Put(i);
                }
            });
            Assert.False(writer.Daemon); // Python's default
            writer.Start();
            var daemon = new WorkerProcess(() =>
            {
                Thread.Sleep(600_000);
                items.Put(-1);
            }) { Daemon = true };
            daemon.Start();
            Assert.Throws<InvalidOperationException>(() => daemon.Daemon = false);
            File.WriteAllText(path, daemon.Pid.ToString());
        });
        var started = System.Diagnostics.Stopwatch.StartNew();
        program.Start();
        TestSupport.JoinOrFail(program);
        Assert.Equal(0, program.ExitCode);
        Assert.InRange(started.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(30)); // waited for the writer, not for the daemon's 10 minutes
        var got = new List<int>();
        while (items.TryGet(out var item, TimeSpan.FromMilliseconds(500))) got.Add(item);
        Assert.Equal([1, 2, 3, 4, 5], got); // the last item arrived: the writer finished before its parent exited
        var daemonPid = int.Parse(File.ReadAllText(path));
        File.Delete(path);
        Assert.True(TestSupport.Eventually(() => !TestSupport.ProcessExists(daemonPid), TimeSpan.FromSeconds(10)), $"daemon child {daemonPid} outlived its parent's exit");
    }
}
