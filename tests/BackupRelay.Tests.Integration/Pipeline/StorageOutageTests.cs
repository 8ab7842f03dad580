using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Storage goes away for 25 s (longer than the storage SDK retries one call: 0.5 s doubling five times, at most
/// 15.5 s and 20 % jitter) while files are being copied and comes back (every connection reset, new ones refused, then listening again): the
/// local host and the worker recover by themselves — no restart, no run lost, stuck or copied twice into a
/// committed blob — and health says storage is unreachable while it is.
/// </summary>
public sealed class StorageOutageTests : PipelineHarness
{
    protected override Task<Azurite> StartAzuriteAsync() => Azurite.StartBehindGatesAsync();

    // Every probe a fresh look (the outage is short); downloads slow enough to be in flight when storage stops.
    protected override Dictionary<string, string?> ExtraSettings() => new() { ["Http:HealthCacheDuration"] = "00:00:00" };

    [Fact]
    public async Task A_25_second_outage_mid_copy_is_recovered_without_a_restart()
    {
        // Downloads take 4 s: the copies are in flight (received, leased, downloading) when storage stops,
        // and their first storage call after it fails.
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "latency", DelayMs = 4000, Count = 0 });
        await TickAsync();
        var copies = Storage.GetQueue(BackupRelay.Configuration.QueueNames.CopyBackupFile);
        var watch = Stopwatch.StartNew();
        while (!await AllCopiesInFlightAsync())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), "the copies never were all in flight");
            await Task.Delay(50);
        }

        async Task<bool> AllCopiesInFlightAsync() =>
            (await Runs.ListAsync()).Count(r => r.Step == RunStep.Copying) == 2
            && (await copies.GetPropertiesAsync()).Value.ApproximateMessagesCount > 0
            && (await copies.PeekMessagesAsync()).Value.Length == 0;

        Azurite.CutOff();
        // The slow downloads did their part (the copies are in flight); once storage is back the copies go at full speed.
        State.Faults.Clear();
        await Task.Delay(TimeSpan.FromSeconds(2));
        using (var health = await Api.GetAsync("/api/health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.NotEqual("ok", JsonNode.Parse(await health.Content.ReadAsStringAsync())!["storage"]!.GetValue<string>());
        }

        await Task.Delay(TimeSpan.FromSeconds(23));
        Azurite.Restore();
        var back = Stopwatch.StartNew();

        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(150));
        back.Stop();
        await File.AppendAllTextAsync(Path.Combine(Path.GetTempPath(), "backuprelay-outage-recovery-ms.txt"), $"{back.ElapsedMilliseconds}\n");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphB), "social");
        Assert.Single(State.Backups, b => b.GraphId == GraphA);
        Assert.Single(State.Backups, b => b.GraphId == GraphB);
        Assert.All(runs, r => Assert.Equal(RunStatus.Succeeded, r.Status));
        using var healthy = await Api.GetAsync("/api/health");
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
    }
}
