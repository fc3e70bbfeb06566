using System.Diagnostics;
using System.Text;

namespace Multiprocessing.Tests;

/// <summary>Runs python3 scripts for the tests that check compatibility with CPython's own multiprocessing (its layouts, its names).</summary>
internal static class CPython
{
    private const string Missing = "python3 is not on PATH: the CPython compatibility tests need it (apt-get install python3).";
    private static readonly Encoding Utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

    private static bool Available() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "python3")));

    /// <summary>How to start python3 running <paramref name="script"/> with <paramref name="args"/> (sys.argv[1:]), its streams redirected, in UTF-8.</summary>
    public static ProcessStartInfo Start(string script, params string[] args)
    {
        Assert.True(Available(), Missing);
        var psi = new ProcessStartInfo("python3")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Utf8,
            StandardErrorEncoding = Utf8,
        };
        psi.Environment["PYTHONIOENCODING"] = "utf-8";
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Runs <paramref name="script"/> to its end (within the tests' patience), feeding it <paramref name="stdin"/>; its output. Fails the test when it fails.</summary>
    public static string Run(string script, string? stdin, params string[] args)
    {
        using var python = Process.Start(Start(script, args))!;
        if (stdin is not null) python.StandardInput.Write(stdin);
        python.StandardInput.Close();
        var stdout = python.StandardOutput.ReadToEndAsync();
        var stderr = python.StandardError.ReadToEndAsync();
        if (!python.WaitForExit(TestSupport.Patience))
        {
            python.Kill();
            Assert.Fail("python did not exit within the patience");
        }
        python.WaitForExit();
        Assert.True(python.ExitCode == 0, $"python failed ({python.ExitCode}): {stderr.GetAwaiter().GetResult()}");
        return stdout.GetAwaiter().GetResult();
    }
}
