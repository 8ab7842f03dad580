using System.Net;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Tests.Integration.Otlp;
using OpenTelemetry.Proto.Metrics.V1;
using Xunit.Abstractions;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The runtime runs up to batchSize + newBatchThreshold copy invocations at once in one worker: their
/// buffers all come from the one budget (<c>Copy__MemoryBudgetBytes</c>), so that many copies together
/// never hold more than it. Read from the worker's own gauges, as an operator would.
/// </summary>
public sealed class CopyBudgetTests(ITestOutputHelper output) : PipelineHarness
{
    private const string Wide = "a1b2c3d4-0000-4000-8000-0000000000d1";
    private const int Files = 40;
    private const long Budget = 1024 * 1024;
    private OtlpReceiver _otlp = null!;

    protected override void ExtendSeed(EmulatorSeed seed)
    {
        seed.Graphs.Add(new SeedGraph { Id = Wide, Name = "wide", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [.. Enumerable.Range(0, Files).Select(i => (Block * 8) + i)] });
        seed.Settings.ObsBytesPerSecondPerConnection = 1024 * 1024;
    }

    protected override async Task BeforeHostStartsAsync() => _otlp = await OtlpReceiver.StartAsync();

    protected override Dictionary<string, string?> ExtraSettings()
    {
        var settings = _otlp.Settings();
        settings["Backup:Graphs:2:GraphId"] = Wide;
        settings["Copy:MemoryBudgetBytes"] = Budget.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Copy:SliceMaxBytes"] = "0";
        return settings;
    }

    [Fact]
    public async Task As_many_copies_as_the_runtime_runs_at_once_stay_within_the_one_budget()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/graphs/{Wide}/backups");
        request.Headers.Add("x-functions-key", FunctionKey);
        using var accepted = await Api.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var run = Assert.Single(await WaitForRunsAsync(1, TimeSpan.FromSeconds(120)));
        await AssertCopiedAsync(run, "wide");

        var rules = HostJson;
        var atOnce = LocalHost.MaxInFlight(FunctionNames.CopyBackupFile);
        Assert.InRange(atOnce, rules.BatchSize, rules.BatchSize + rules.NewBatchThreshold);

        double Gauge(string name) => _otlp.Metrics.SelectMany(m => m.ResourceMetrics).SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics)
            .Where(m => m.Name == name && m.DataCase == Metric.DataOneofCase.Gauge).SelectMany(m => m.Gauge.DataPoints)
            .Select(p => p.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? p.AsInt : p.AsDouble).DefaultIfEmpty(-1).Last();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Gauge("backuprelay.copy.buffer.in_use") != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }

        var peak = Gauge("backuprelay.copy.buffer.peak");
        Assert.Equal(Budget, Gauge("backuprelay.copy.buffer.budget"));
        Assert.InRange(peak, Block * 2, Budget);
        Assert.Equal(0, Gauge("backuprelay.copy.buffer.in_use"));
        var rss = File.ReadLines($"/proc/{LocalHost.Worker!.ProcessId}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        output.WriteLine($"{atOnce} copies at once; buffer peak {peak / 1024:F0} KiB of a {Budget / 1024} KiB budget; worker {rss}");
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _otlp.DisposeAsync();
    }
}
