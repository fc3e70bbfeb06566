namespace Multiprocessing.Tests;

/// <summary>Swaps the process-wide Console.Out, so it must not run beside other tests.</summary>
[CollectionDefinition(nameof(ConsoleCollection), DisableParallelization = true)]
public sealed class ConsoleCollection;

[Collection(nameof(ConsoleCollection))]
public class ConsoleTests
{
    [Fact]
    public void Child_stdout_reaches_the_parent_console_and_never_corrupts_the_channel()
    {
        var captured = new StringWriter();
        var original = Console.Out;
        Console.SetOut(TextWriter.Synchronized(captured));
        try
        {
            var path = TestSupport.TempFile();
            var p = new WorkerProcess(() =>
            {
                for (var i = 0; i < 2000; i++) Console.WriteLine($"line {i} from the child");
                File.WriteAllText(path, "done");
            });
            p.Start();
            TestSupport.JoinOrFail(p);
            Assert.Null(p.Exception);
            Assert.Equal("done", File.ReadAllText(path));
            File.Delete(path);
            Assert.True(TestSupport.Eventually(() => captured.ToString().Contains("line 1999 from the child"), TimeSpan.FromSeconds(5)));
            Assert.Contains("line 0 from the child", captured.ToString());
        }
        finally
        {
            Console.SetOut(original);
        }
    }
}
