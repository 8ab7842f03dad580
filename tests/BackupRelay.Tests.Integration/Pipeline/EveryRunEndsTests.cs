using System.Net;
using System.Text.Json;
using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Restores;
using BackupRelay.Runs;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>Reads a run record straight from storage (the host, and the test's own services with it, may be stopped).</summary>
internal static class StoredRuns
{
    public static async Task<RunRecord> ReadAsync(BackupRelay.Storage.StorageAccount storage, string runId) =>
        JsonSerializer.Deserialize((await storage.GetContainer(QueueNames.RunsContainer).GetBlobClient($"runs/{runId}.json").DownloadContentAsync()).Value.Content.ToMemory().Span,
            RunRecordJson.Default.RunRecord)!;
}

/// <summary>
/// A cancelled last delivery is that delivery's failure for the run: with <c>maxDequeueCount</c> 1 set the way the
/// runtime allows (an app setting overriding host.json), a start message cancelled by the host's shutdown fails
/// its run at once instead of leaving it running forever.
/// </summary>
public sealed class CancelledLastDeliveryTests : PipelineHarness
{
    protected override Dictionary<string, string> HostJsonOverrides() =>
        new(TestTimings()) { [HostJson.OverridePrefix + "extensions__queues__maxDequeueCount"] = "1" };

    [Fact]
    public async Task A_last_delivery_cancelled_at_shutdown_fails_its_run_naming_why()
    {
        Assert.Equal(1, LocalHost.HostJson.MaxDequeueCount);
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{GraphA}/backups", Kind = "latency", DelayMs = 60_000, Count = 1 });
        await Services.GetRequiredService<WorkQueues>().SendStartAsync(new StartBackupMessage(1, "http-last", GraphA, "http", null, "n"));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (LocalHost.InFlight(FunctionNames.StartBackup) == 0 || await Runs.GetAsync("http-last") is not { Step: RunStep.Starting })
        {
            Assert.True(DateTime.UtcNow < deadline, "StartBackup never reached GES");
            await Task.Delay(20);
        }

        await StopHostAsync();
        var run = await StoredRuns.ReadAsync(Storage, "http-last");
        Assert.Equal(RunStatus.Failed, run.Status);
        var error = Assert.Single(run.Errors);
        Assert.Equal(FunctionNames.StartBackup, error.Step);
        Assert.Contains("last delivery (1 of 1) was cancelled", error.Reason, StringComparison.Ordinal);
    }
}

/// <summary>
/// The dequeue limit the runtime uses is the app's: <c>AzureFunctionsJobHost__extensions__queues__maxDequeueCount</c>=2
/// (host.json says 5) makes the second failed delivery the last, and the run fails there, naming it.
/// </summary>
public sealed class DequeueLimitOverrideTests : PipelineHarness
{
    protected override Dictionary<string, string> HostJsonOverrides() =>
        new(TestTimings()) { [HostJson.OverridePrefix + "extensions__queues__maxDequeueCount"] = "2" };

    [Fact]
    public async Task A_run_fails_at_the_delivery_the_runtime_makes_its_last()
    {
        Assert.Equal(2, LocalHost.HostJson.MaxDequeueCount);
        State.Faults.Add(new FaultSpec { Method = "GET", Path = $"/v2/*/graphs/{GraphA}", Kind = "status", Status = 500, Count = 0 });
        await Services.GetRequiredService<WorkQueues>().SendStartAsync(new StartBackupMessage(1, "http-limit", GraphA, "http", null, "n"));
        var run = Assert.Single(await WaitForRunsAsync(1, TimeSpan.FromSeconds(60)));
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Contains(run.Errors, e => e.Step == FunctionNames.StartBackup && e.Reason.Contains("failed 2 deliveries", StringComparison.Ordinal));
        var poison = Storage.GetQueue(QueueNames.Poison(QueueNames.StartBackup));
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await poison.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the message never reached the poison queue");
            await Task.Delay(100);
        }
    }
}

/// <summary>
/// Every run ends: one whose messages are gone is failed by the run housekeeping once it has been quiet past
/// <c>Backup__QuietRunLimit</c> (on a clock moved forward, not by waiting), naming its step, and a restore's target
/// graph it held is free again; and two runs of one graph that meet one GES backup make one copy, both records saying so.
/// </summary>
public sealed class EveryRunEndsTests : RestoreHarness
{
    [Fact]
    public async Task A_run_gone_quiet_is_failed_by_the_sweep_naming_its_step_and_frees_its_target_graph()
    {
        var copied = await CopyOutAsync();

        // A restore into graph B whose messages are gone (as after a parked or lost message): it holds B.
        var now = DateTimeOffset.UtcNow;
        var stuck = RunRecord.NewCopyRestore("rfc-stuck", RunKind.RestoreFromCopy, "http", GraphB, null, copied.BackupId!, "orders", "ges-restore-bucket/x/",
            null, null, null, copied.Files.Select(f => (f.Name, f.Size!.Value, f.Md5, f.Sha256!)), "run-record", CopyLevel.Verified, now);
        Assert.True(stuck.UploadsQueued(now));
        await Runs.CreateAsync(stuck);
        Assert.Null(await RestoreTargets.TryClaimAsync(Runs, GraphB, stuck.Id, CancellationToken.None));
        var (status, body) = await RestoreAsync(copied.BackupId!, "while-stuck");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("rfc-stuck", body["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        var housekeeping = Services.GetRequiredService<RunHousekeeping>();
        var quiet = TimeSpan.FromHours(6);
        Assert.Empty(await housekeeping.FailQuietRunsAsync(now + quiet - TimeSpan.FromMinutes(1), quiet, TimeSpan.FromDays(7)));
        var failed = Assert.Single(await housekeeping.FailQuietRunsAsync(now + quiet + TimeSpan.FromMinutes(1), quiet, TimeSpan.FromDays(7)));
        Assert.Equal(stuck.Id, failed.Id);
        var run = (await Runs.GetAsync(stuck.Id))!;
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal("uploading", run.Errors.Single().Step);
        Assert.Contains("Backup__QuietRunLimit", run.Errors.Single().Reason, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Succeeded, (await Runs.GetAsync(copied.Id))!.Status); // the ended run was left alone

        (status, body) = await RestoreAsync(copied.BackupId!, "after-sweep");
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal(RunStatus.Succeeded, (await WaitForRunAsync(body["id"]!.GetValue<string>())).Status);
    }

    [Fact]
    public async Task Two_runs_that_meet_one_ges_backup_make_one_copy_and_both_records_say_so_in_either_order()
    {
        var queues = Services.GetRequiredService<WorkQueues>();
        foreach (var (graph, first, second) in new[] { (GraphA, "schedule", "http"), (GraphB, "http", "schedule") })
        {
            // The first run starts the graph's backup; the second's add-backup fails, and its next delivery finds the
            // backup the first started (since its own first claim, within the clock-skew allowance) and adopts it.
            await queues.SendStartAsync(new StartBackupMessage(1, $"{first}-{graph[^1]}", graph, first, null, "n1"));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (await Runs.GetAsync($"{first}-{graph[^1]}") is not { JobId: not null })
            {
                Assert.True(DateTime.UtcNow < deadline, "the first run never started its job");
                await Task.Delay(50);
            }

            State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{graph}/backups", Kind = "status", Status = 500, Count = 0 });
            await queues.SendStartAsync(new StartBackupMessage(1, $"{second}-{graph[^1]}", graph, second, null, "n2"));
        }

        var runs = await WaitForRunsAsync(4, TimeSpan.FromSeconds(90));
        foreach (var graph in new[] { GraphA, GraphB })
        {
            var pair = runs.Where(r => r.GraphId == graph).ToList();
            Assert.Equal(2, pair.Count);
            Assert.All(pair, r => Assert.Equal(RunStatus.Succeeded, r.Status));
            var backup = Assert.Single(State.Backups, b => b.GraphId == graph);
            Assert.All(pair, r => Assert.Equal(backup.Id, r.BackupId));
            var copier = Assert.Single(pair, r => r.FollowsRunId is null);
            var follower = Assert.Single(pair, r => r.FollowsRunId == copier.Id);
            Assert.Equal([follower.Id], copier.JoinedBy);
            Assert.True(pair.Single(r => r.Id.EndsWith(graph[^1]) && r.Trigger == (graph == GraphA ? "http" : "schedule")).JobAdopted);
            Assert.Equal(copier.Files.Select(f => (f.Name, f.Sha256)), follower.Files.Select(f => (f.Name, f.Sha256)));
        }
    }
}
