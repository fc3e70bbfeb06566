using Spectre.Console;

/// <summary>A benchmark's table: Markdown for docs/benchmarks.md, or drawn for the terminal; then the machine it ran on.</summary>
internal static class BenchTable
{
    public static void Print(string title, string[] headers, IEnumerable<string[]> lines, bool markdown)
    {
        if (markdown)
        {
            Console.WriteLine("| " + string.Join(" | ", headers) + " |");
            Console.WriteLine("|" + string.Concat(headers.Select(_ => "---|")));
            foreach (var l in lines) Console.WriteLine("| " + string.Join(" | ", l) + " |");
        }
        else
        {
            var table = new Table().Title(title);
            foreach (var h in headers) table.AddColumn(h);
            foreach (var l in lines) table.AddRow(l.Select(Markup.Escape).ToArray());
            AnsiConsole.Write(table);
        }
        Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
    }
}
