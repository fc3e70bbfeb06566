using System.Diagnostics;
using System.Text.Json;
using Multiprocessing;

/// <summary>What every benchmark shares: running its CPython twin, and bounded waits on worker processes.</summary>
internal static class BenchSupport
{
    /// <summary>
    /// Runs <paramref name="script"/> (next to the benchmark's binary) with python3 and parses the JSON it
    /// prints last; null, with a message on stderr, when python3 is missing or fails.
    /// </summary>
    public static JsonElement? RunCPython(string script, params string[] arguments)
    {
        var path = Path.Combine(AppContext.BaseDirectory, script);
        try
        {
            var info = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add(path);
            foreach (var a in arguments) info.ArgumentList.Add(a);
            using var p = Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(10))) { p.Kill(); Console.Error.WriteLine($"python3 {script} timed out"); return null; }
            if (p.ExitCode != 0) { Console.Error.WriteLine($"python3 {script} failed: {stderr.Result}"); return null; }
            return JsonDocument.Parse(stdout.Result.Trim().Split('\n')[^1]).RootElement.Clone();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Console.Error.WriteLine("python3 is not on PATH: the CPython figures are missing.");
            return null;
        }
    }

    /// <summary>Runs <paramref name="script"/> once in a fresh python3 and reads the number it prints last; NaN when python3 is missing or fails.</summary>
    public static double RunCPythonValue(string script, params string[] arguments)
    {
        try
        {
            var info = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, script));
            foreach (var a in arguments) info.ArgumentList.Add(a);
            using var p = Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(); return double.NaN; }
            if (p.ExitCode != 0) { Console.Error.WriteLine($"python3 {script} failed: {stderr.Result}"); return double.NaN; }
            return double.Parse(stdout.Result.Trim().Split('\n')[^1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return double.NaN;
        }
    }

    /// <summary>Waits (boundedly) for a benchmark's worker and surfaces its failure.</summary>
    public static void Check(WorkerProcess p)
    {
        if (!p.Join(TimeSpan.FromMinutes(2))) { p.Kill(); throw new TimeoutException($"{p.Name} did not finish"); }
        if (p.Exception is not null) throw new InvalidOperationException($"{p.Name} failed", p.Exception);
    }

    /// <summary>How long <paramref name="work"/> takes, in seconds.</summary>
    public static double Seconds(Action work)
    {
        var sw = Stopwatch.StartNew();
        work();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>The median of <paramref name="reps"/> measures.</summary>
    public static double Median(int reps, Func<double> measure)
    {
        var values = Enumerable.Range(0, reps).Select(_ => measure()).Order().ToArray();
        return values[values.Length / 2];
    }

    /// <summary>Runs <paramref name="work"/> for a while first (steady state, as BenchmarkDotNet measures it).</summary>
    public static void WarmUp(Action work, int seconds = 2)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(seconds)) work();
    }
}
