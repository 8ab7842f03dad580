using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using BackupRelay.Configuration;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Runs;
using BackupRelay.Storage;
using Xunit.Abstractions;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Beyond one instance: three standalone host processes over one Azurite and one emulator whose API
/// gateway throttles GES per project. One schedule tick for 200 graphs (<c>FANOUT_GRAPHS</c> sets
/// another count: the benchmark runs 500); one instance is killed with SIGKILL a third of the way in,
/// and storage goes away for 20 s two thirds of the way in. Every run ends Succeeded with verified
/// files, one GES backup per graph, GES calls per run within the pipeline's bound, and under 5 % of
/// GES calls throttled.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class FanOutTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const double GatewayRequestsPerSecond = 60;
    private const int Instances = 3;
    private static readonly int Graphs = int.TryParse(Environment.GetEnvironmentVariable("FANOUT_GRAPHS"), out var n) && n > 0 ? n : 200;

    private readonly string _data = Directory.CreateTempSubdirectory("backuprelay-fanout-").FullName;
    private RunningEmulator _emulator = null!;
    private Azurite _azurite = null!;
    private readonly List<HostProcess> _hosts = [];

    private static string GraphId(int i) => $"f0000000-0000-4000-8000-{i:D12}";

    public async Task InitializeAsync()
    {
        var seed = DemoSeed.Create();
        seed.Settings.JobPendingSeconds = 0.5;
        seed.Settings.JobRunningSeconds = 1;
        seed.Settings.GesRequestsPerSecond = GatewayRequestsPerSecond;
        for (var i = 0; i < Graphs; i++)
        {
            seed.Graphs.Add(new SeedGraph { Id = GraphId(i), Name = $"g{i}", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [2048 + i, 17] });
        }

        _emulator = await HuaweiCloudEmulator.StartAsync(seed);
        _azurite = await Azurite.StartOnDiskAsync(_data);
    }

    private Dictionary<string, string> Settings(bool schedules)
    {
        var settings = HostProcess.Settings(_azurite, _emulator);
        foreach (var (key, value) in new Dictionary<string, string>
        {
            // The project's gateway budget shared by the instances, with headroom for the health probes.
            ["HuaweiCloud__Resilience__RequestsPerSecond"] = (GatewayRequestsPerSecond * 0.8 / Instances).ToString(CultureInfo.InvariantCulture),
            ["HuaweiCloud__Resilience__BaseDelay"] = "00:00:00.200",
            ["Backup__Schedule"] = "0 0 2 * * *",
            ["Backup__PollInitialDelay"] = "00:00:02",
            ["Backup__PollMaxDelay"] = "00:00:04",
            ["Backup__StartInterval"] = "00:00:00.050",
            ["Standalone__RunScheduleOnStartup"] = schedules ? "true" : "false",
            ["Standalone__HostJsonPath"] = PipelineHarness.WriteHostJson(),
            ["Standalone__MinPollingInterval"] = "00:00:00.050",
            ["Standalone__MessageLease"] = "00:00:10",
            ["Http__FunctionKeys__0"] = PipelineHarness.FunctionKey,
            ["Http__HealthCacheDuration"] = "00:00:00",
        })
        {
            settings[key] = value;
        }

        for (var i = 0; i < Graphs; i++)
        {
            settings[$"Backup__Graphs__{i}__GraphId"] = GraphId(i);
        }

        return settings;
    }

    [Fact]
    public async Task Three_instances_back_up_every_graph_once_through_a_kill_and_a_storage_outage()
    {
        // Instances 1 and 2 first, then the one whose start fires the schedule.
        for (var i = 1; i < Instances; i++)
        {
            _hosts.Add(await HostProcess.StartAsync(Settings(schedules: false)));
        }

        var watch = Stopwatch.StartNew();
        _hosts.Insert(0, await HostProcess.StartAsync(Settings(schedules: true)));
        var runs = new RunStore(StorageAccount.FromConnectionString(_azurite.ConnectionString).GetContainer(QueueNames.RunsContainer));

        async Task<int> FinishedAsync()
        {
            try
            {
                return (await runs.ListAsync(limit: int.MaxValue)).Count(r => r.IsFinished);
            }
            catch (Exception ex) when (StorageErrors.Find(ex) is not null || ex is HttpRequestException or TaskCanceledException)
            {
                return -1;
            }
        }

        async Task WaitForAsync(int count, TimeSpan limit)
        {
            var deadline = watch.Elapsed + limit;
            while (await FinishedAsync() < count)
            {
                Assert.True(watch.Elapsed < deadline, $"{await FinishedAsync()} of {Graphs} runs finished after {watch.Elapsed}\n{_hosts[0].Tail(3000)}");
                await Task.Delay(250);
            }
        }

        // A third in: kill -9 one instance with its messages in hand.
        await WaitForAsync(Graphs / 3, TimeSpan.FromMinutes(4));
        var killedAt = watch.Elapsed;
        var victimRss = _hosts[2].PeakRssBytes();
        await _hosts[2].KillAsync();

        // Two thirds in: storage away for 20 s, then back on the same data and ports.
        await WaitForAsync(2 * Graphs / 3, TimeSpan.FromMinutes(4));
        var (blobPort, queuePort) = (_azurite.BlobPort, _azurite.QueuePort);
        await _azurite.StopAsync();
        await _azurite.DisposeAsync();
        var outageAt = watch.Elapsed;
        await Task.Delay(TimeSpan.FromSeconds(2));
        using (var health = await _hosts[0].Client.GetAsync("/api/health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.NotEqual("ok", JsonNode.Parse(await health.Content.ReadAsStringAsync())!["storage"]!.GetValue<string>());
        }

        await Task.Delay(TimeSpan.FromSeconds(18));
        _azurite = await Azurite.StartOnDiskAsync(_data, blobPort, queuePort);
        var restoredAt = watch.Elapsed;

        await WaitForAsync(Graphs, TimeSpan.FromMinutes(5));
        var done = watch.Elapsed;

        // Every run Succeeded, one GES backup per graph, files byte-exact and verified, nothing copied twice.
        var all = (await runs.ListAsync(limit: int.MaxValue)).Where(r => r.GraphId.StartsWith("f0000000", StringComparison.Ordinal)).ToList();
        Assert.Equal(Graphs, all.Count);
        Assert.All(all, r => Assert.True(r.Status == RunStatus.Succeeded, $"{r.Id}: {r.Status} {string.Join("; ", r.Errors.Select(e => e.Reason))}"));
        var state = _emulator.State;
        var destination = StorageAccount.FromConnectionString(_azurite.ConnectionString).GetContainer("ges-backups");
        for (var i = 0; i < Graphs; i++)
        {
            var graph = GraphId(i);
            var backup = Assert.Single(state.Backups, b => b.GraphId == graph);
            var run = all.Single(r => r.GraphId == graph);
            Assert.Equal(backup.Id, run.BackupId);
            foreach (var file in backup.Files)
            {
                var recorded = run.Files.Single(f => f.Name == file.Name);
                Assert.Equal(0, recorded.ContentRetries);
                var blob = (await destination.GetBlobClient($"g{i}/{backup.Id}/{file.Name}").DownloadContentAsync()).Value;
                var (md5, _) = BackupContent.Hashes(BackupContent.Seed(backup.Id, file.Name), file.Size);
                Assert.Equal(md5, System.Security.Cryptography.MD5.HashData(blob.Content.ToArray()));
                Assert.Equal("true", blob.Details.Metadata[CopyMetadata.Verified]);
            }

            Assert.True((await destination.GetBlobClient($"g{i}/{backup.Id}/{CopyBackupFileHandler.ManifestName}").ExistsAsync()).Value);
        }

        // Pacing: GES calls per run within the pipeline's bound, few throttled.
        var ges = state.RecordedRequests().Where(r => r.Path.StartsWith("/v2/", StringComparison.Ordinal) && r.Path.Contains("/graphs", StringComparison.Ordinal)).ToList();
        var perRun = Enumerable.Range(0, Graphs).Select(i => ges.Count(r => r.Path.Contains("/graphs/" + GraphId(i), StringComparison.Ordinal))).ToList();
        var throttled = ges.Count(r => r.Status == 429);
        var share = (double)throttled / ges.Count;
        var rss = _hosts.Select((h, i) => i == 2 ? victimRss : h.PeakRssBytes()).ToList();
        var figures = string.Create(CultureInfo.InvariantCulture,
            $"fan-out: {Graphs} graphs, {Instances} instances, gateway {GatewayRequestsPerSecond} GES req/s per project: all verified {done.TotalSeconds:F1} s after the tick; " +
            $"kill -9 at {killedAt.TotalSeconds:F1} s, storage down {outageAt.TotalSeconds:F1}–{restoredAt.TotalSeconds:F1} s; " +
            $"GES calls per run mean {perRun.Average():F2}, max {perRun.Max()}; {throttled} of {ges.Count} GES calls throttled ({share:P2}); " +
            $"peak RSS per instance {string.Join(", ", rss.Select(b => $"{b / (1024 * 1024)} MB"))} (the killed one until its kill)");
        output.WriteLine(figures);
        await File.AppendAllTextAsync(Path.Combine(Path.GetTempPath(), "backuprelay-fanout.txt"), figures + "\n");
        Assert.True(perRun.Max() <= 8 + 2 + 2, figures);
        Assert.True(share < 0.05, figures);
        Assert.False(_hosts[0].HasExited || _hosts[1].HasExited, "a surviving instance exited");
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        await _azurite.DisposeAsync();
        await _emulator.DisposeAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
