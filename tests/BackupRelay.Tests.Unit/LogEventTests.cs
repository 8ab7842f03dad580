using System.Text.RegularExpressions;

namespace BackupRelay.Tests.Unit;

/// <summary>One table of log event ids: each id written once in the code, and docs/operations.md lists exactly those, with their levels.</summary>
public sealed partial class LogEventTests
{
    private static string Root()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Functions.sln")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        return root;
    }

    /// <summary>Every [LoggerMessage] in src: id, level ("as forwarded" when the call gives it) and file.</summary>
    private static List<(int Id, string Level, string File)> InCode()
    {
        var found = new List<(int, string, string)>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root(), "src"), "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            var text = File.ReadAllText(file);
            found.AddRange(Positional().Matches(text).Select(m => (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), m.Groups[2].Value, Path.GetFileNameWithoutExtension(file))));
            found.AddRange(Named().Matches(text).Select(m => (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                m.Groups[2].Success ? m.Groups[2].Value : "as forwarded", Path.GetFileNameWithoutExtension(file))));
        }

        return found;
    }

    [Fact]
    public void Every_event_id_is_used_once()
    {
        var events = InCode();
        Assert.True(events.Count > 50, $"only {events.Count} log events found: the pattern no longer matches the code");
        var twice = events.GroupBy(e => e.Id).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => e.File))}").ToList();
        Assert.True(twice.Count == 0, "event ids used more than once: " + string.Join("; ", twice));
    }

    [Fact]
    public void The_operations_guide_lists_exactly_the_events_in_the_code()
    {
        var documented = DocRow().Matches(File.ReadAllText(Path.Combine(Root(), "docs", "operations.md")))
            .Select(m => $"{m.Groups[1].Value} {m.Groups[2].Value} {m.Groups[3].Value}").Order(StringComparer.Ordinal).ToList();
        var code = InCode().Select(e => $"{e.Id} {e.Level} {e.File}").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(code, documented);
    }

    [GeneratedRegex(@"\[LoggerMessage\((\d+),\s*LogLevel\.(\w+),")]
    private static partial Regex Positional();

    [GeneratedRegex(@"\[LoggerMessage\(EventId = (\d+)(?:, Level = LogLevel\.(\w+))?,")]
    private static partial Regex Named();

    [GeneratedRegex(@"^\| (\d+) \| ([^|]+?) \| `(\w+)` \|", RegexOptions.Multiline)]
    private static partial Regex DocRow();
}
