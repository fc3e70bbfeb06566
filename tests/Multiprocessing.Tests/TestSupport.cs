using System.Runtime.InteropServices;

namespace Multiprocessing.Tests;

/// <summary>Bounded waits and small helpers shared by the tests: a bug fails fast, it never hangs CI.</summary>
internal static partial class TestSupport
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public static void JoinOrFail(WorkerProcess p)
    {
        if (!p.Join(Patience))
        {
            p.Kill();
            Assert.Fail($"{p.Name} (pid {p.Pid}) did not exit within {Patience.TotalSeconds} s");
        }
    }

    public static string TempFile() => Path.Combine(Path.GetTempPath(), $"mp-test-{Guid.NewGuid():N}");

    /// <summary>Polls until <paramref name="condition"/> holds or the time is up.</summary>
    public static bool Eventually(Func<bool> condition, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            if (condition()) return true;
            Thread.Sleep(20);
        }
        return condition();
    }

    public static bool ProcessExists(int pid) => kill(pid, 0) == 0;

    public static void SigKill(int pid) => kill(pid, 9);

    public static void SigTerm(int pid) => kill(pid, 15);

    /// <summary>Writes to an unmapped address from native code: a real segmentation fault, not a managed exception.</summary>
    public static unsafe void NativeSegfault() => memset((void*)16, 1, 64);

    [LibraryImport("libc")]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc")]
    private static unsafe partial void* memset(void* dest, int c, nuint count);
}
