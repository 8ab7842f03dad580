using System.Diagnostics;
using Xunit.Abstractions;

namespace BackupRelay.Tests.Integration.Copying;

/// <summary>
/// The copy's real memory, not its budget's bookkeeping: the copy engine runs in a process of its own (the DevTools
/// <c>copy</c> command), which resets its peak resident set just before the copy starts and reports it when the copy
/// ends. The peak may exceed the resident set at the start by what the copy rents from the budget (its charge, which
/// is what the pool really hands out) plus a fixed allowance for what any copy allocates beside its buffers (the
/// HTTP stack, the code compiled on first use, the GC's young generation). A copier that held its buffers twice, or
/// took them from outside the budget, fails here.
/// </summary>
public sealed class CopyRealMemoryTests(ITestOutputHelper output) : CopyHarness
{
    /// <summary>What a copy may hold beside the buffers it rents.</summary>
    private const long AllowanceKib = 24 * 1024;

    [Fact]
    public async Task A_copy_holds_no_more_real_memory_than_its_budget_charge_and_a_fixed_allowance()
    {
        const int Connections = 32;
        const long Size = 192L << 20;
        var file = await BackupFileAsync(Size);
        var directory = Directory.CreateTempSubdirectory("backuprelay-rss-").FullName;
        try
        {
            var devTools = Path.Combine(Azurite.RepositoryRoot(), "src", "BackupRelay.DevTools", "bin", "Release", "net10.0", "BackupRelay.DevTools.dll");
            var start = new ProcessStartInfo("dotnet")
            {
                ArgumentList = { devTools, "copy", "--link", file.Link!.ToString(), "--local", directory, "--path", "rss.bin",
                    "--connections", $"{Connections}", "--budget-mib", "256", "--memory-report", "true" },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            var line = (await stdout).Trim();
            Assert.True(process.ExitCode == 0, $"the copy process failed ({process.ExitCode}): {line} {await stderr}");
            output.WriteLine(line);

            var fields = line.Split(' ');
            Assert.Equal("Completed", fields[0]);
            Assert.Equal(Size, long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture));
            long Field(string name) => long.Parse(fields.Single(f => f.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..],
                System.Globalization.CultureInfo.InvariantCulture);
            var charged = Field("budget-peak") / 1024;
            var growth = Field("rss-peak-kib") - Field("rss-start-kib");

            // The copy's charge is its connections' chunks and the hash ring's, 1 MiB each.
            Assert.Equal((Connections + 4) * 1024L, charged);
            Assert.True(growth <= charged + AllowanceKib,
                $"the copy's peak resident memory grew by {growth} KiB: over its budget charge of {charged} KiB plus the {AllowanceKib} KiB allowance");
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }
}
