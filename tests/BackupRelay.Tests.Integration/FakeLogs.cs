using Microsoft.Extensions.Logging.Testing;

namespace BackupRelay.Tests.Integration;

/// <summary>What a test's <see cref="FakeLoggerProvider"/> collected, as text to search (secrets, reasons).</summary>
public static class FakeLogs
{
    public static IEnumerable<string> Lines(this FakeLoggerProvider provider) =>
        provider.Collector.GetSnapshot().Select(r => $"{r.Level} {r.Category}: {r.Message} {r.Exception}");

    public static string All(this FakeLoggerProvider provider) => string.Join("\n", provider.Lines());
}
