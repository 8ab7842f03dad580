using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using BackupRelay.Drills;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Restores;
using BackupRelay.Runs;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>What the drill tests share: graph A drilled into a graph kept for drills, a notification receiver, drill ticks and waits.</summary>
public abstract class DrillHarness : RestoreHarness
{
    protected const string DrillTarget = "5f0c2d6e-drill-target-orders";
    protected const string NotifySecret = "notify-secret-for-drills-0123456789";

    protected EventReceiver? _receiver;

    protected IEnumerable<JsonNode> _events => _receiver!.Events;

    protected override void ExtendSeed(EmulatorSeed seed) =>
        seed.Graphs.Add(new SeedGraph { Id = DrillTarget, Name = "orders_drill", ProjectId = DemoSeed.ProjectId });

    protected override async Task BeforeHostStartsAsync() => _receiver = await EventReceiver.StartAsync();

    /// <summary>Graph A's restore target.</summary>
    protected abstract string RestoreTarget { get; }

    protected override Dictionary<string, string?> ExtraSettings()
    {
        var settings = base.ExtraSettings();
        settings["Backup:Graphs:0:Drill:Schedule"] = "0 0 3 * * *";
        settings["Backup:Graphs:0:Drill:TargetGraphId"] = DrillTarget;
        settings["Http:HealthCacheDuration"] = "00:00:00";
        settings["Notify:Url"] = _receiver!.Url;
        settings["Backup:Graphs:0:Drill:RestoreTarget"] = RestoreTarget;
        settings["Notify:Secret"] = NotifySecret;
        return settings;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_receiver is not null)
        {
            await _receiver.DisposeAsync();
        }
    }

    /// <summary>One drill tick, as the runtime's admin endpoint runs the timer now.</summary>
    protected async Task DrillTickAsync()
    {
        var response = await LocalHost.RunTimerNowAsync(FunctionNames.ScheduleDrills);
        Assert.True(response.Result.Status == Microsoft.Azure.Functions.Worker.Grpc.Messages.StatusResult.Types.Status.Success, response.Result.Exception?.Message);
    }

    protected async Task<List<RunRecord>> DrillRunsAsync() => [.. (await Runs.ListAsync(GraphA)).Where(r => r.Kind == RunKind.RestoreDrill)];

    protected async Task<RunRecord> DrillAsync()
    {
        await DrillTickAsync();
        var drill = Assert.Single(await DrillRunsAsync());
        return await WaitForRunAsync(drill.Id, TimeSpan.FromSeconds(90));
    }

    protected async Task<JsonNode> GetAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("x-functions-key", FunctionKey);
        using var response = await Api.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    protected List<string> ObsKeys(string prefix)
    {
        lock (State.Sync)
        {
            return [.. State.Obs.Objects.Keys.Where(k => k.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k.Key)];
        }
    }

    /// <summary>
    /// Graph A on /api/graphs once the ended drill shows there: the graph's summary is written just after the run
    /// record (a second write), and a view computed in between is shared by the callers meanwhile.
    /// </summary>
    protected async Task<JsonNode> GraphAfterDrillAsync()
    {
        var graph = await GetAsync($"/api/graphs/{GraphA}");
        for (var wait = Stopwatch.StartNew(); graph["restore"]!["state"]!.GetValue<string>() == "Pending" && wait.Elapsed < TimeSpan.FromSeconds(10);)
        {
            await Task.Delay(100);
            graph = await GetAsync($"/api/graphs/{GraphA}");
        }

        return graph;
    }
}

/// <summary>
/// Scheduled restore drills, end to end on the local Functions host and the emulator: graph A ("orders")
/// is drilled into a graph kept for drills; the drill takes A's newest verified copy through the restore
/// path (Blob → OBS, read back → GES import) and proves — or fails to prove — that it comes back.
/// </summary>
public sealed class RestoreDrillTests : DrillHarness
{
    // Far above what a drill here takes: the graph is Proven, with its target and its estimate on /api/graphs.
    protected override string RestoreTarget => "01:00:00";

    /// <summary>Graph A is RestoreUnproven on /api/graphs and /api/health, and the receiver is told once.</summary>
    private async Task AssertUnprovenAsync(string reasonContains)
    {
        var graph = await GraphAfterDrillAsync();
        Assert.Equal("RestoreUnproven", graph["restore"]!["state"]!.GetValue<string>());
        Assert.True(graph["restoreUnproven"]!.GetValue<bool>());
        Assert.Contains(reasonContains, graph["restore"]!["reason"]!.GetValue<string>(), StringComparison.Ordinal);

        var health = await Api.GetAsync("/api/health");
        var body = JsonNode.Parse(await health.Content.ReadAsStringAsync())!;
        Assert.Equal("degraded", body["status"]!.GetValue<string>());
        Assert.Equal([GraphA], body["restoreUnprovenGraphs"]!.AsArray().Select(g => g!.GetValue<string>()));
        Assert.Contains($"restore unproven: {GraphA}", body["graphs"]!.GetValue<string>(), StringComparison.Ordinal);

        var told = Assert.Single(await _receiver!.OfTypeAsync("graph.restore_unproven"));
        Assert.Equal(GraphA, told["graph"]!["graphId"]!.GetValue<string>());
        Assert.Contains(reasonContains, told["graph"]!["reason"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_passing_drill_proves_the_graph_once_however_many_instances_tick_and_cleans_obs_after()
    {
        // Before any copy: the drill waits (no run), the graph is pending, not unproven.
        await DrillTickAsync();
        Assert.Empty(await DrillRunsAsync());
        Assert.Equal("Pending", (await GetAsync($"/api/graphs/{GraphA}"))["restore"]!["state"]!.GetValue<string>());

        var copied = await CopyOutAsync();

        // Two ticks on the host and one from a second instance (this process's own services) at once: one drill.
        var secondInstance = Services.GetRequiredService<DrillScheduler>();
        await Task.WhenAll(DrillTickAsync(), DrillTickAsync(), secondInstance.HandleAsync());
        var started = Assert.Single(await DrillRunsAsync());
        var drill = await WaitForRunAsync(started.Id, TimeSpan.FromSeconds(90));
        Assert.True(drill.Status == RunStatus.Succeeded, string.Join("; ", drill.Errors.Select(e => $"{e.Step}: {e.Reason}")));
        Assert.StartsWith("drl-", drill.Id, StringComparison.Ordinal);
        Assert.Equal(GraphA, drill.GraphId);
        Assert.Equal(DrillTarget, drill.TargetGraphId);
        Assert.Equal(copied.BackupId, drill.BackupId);
        Assert.Equal(copied.CompletedAt, drill.CopyMadeAt);
        Assert.All(drill.Files, f => Assert.Equal("run-record", f.Verification));

        // GES imported it into the drill target, once; every object was read back from OBS.
        var job = Assert.Single(ImportJobs());
        Assert.Equal(DrillTarget, job.GraphId);
        Assert.Equal(job.Detail!["backup_id"], drill.ImportedBackupId);
        var (bucket, prefix) = UploadToObsHandler.SplitObsPath(drill.ImportPath!);
        Assert.Equal($"backuprelay-restores/drills/{DrillTarget}/{drill.Id}/", prefix);
        var reads = State.RecordedRequests().Where(r => r.Method == "GET" && r.Path.StartsWith($"/obs/{bucket}/{prefix}", StringComparison.Ordinal)).ToList();
        // Read back by ranges; an empty file has no byte to read (its HEAD says it is there, 0 bytes long).
        Assert.All(drill.Files.Where(f => f.Size > 0), f => Assert.Contains(reads, r => r.Path == $"/obs/{bucket}/{prefix}{f.Name}" && r.Status == 206));

        var graph = await GraphAfterDrillAsync();
        var restore = graph["restore"]!;
        Assert.Equal("Proven", restore["state"]!.GetValue<string>());
        Assert.False(graph["restoreUnproven"]!.GetValue<bool>());
        Assert.Equal(DrillTarget, restore["targetGraphId"]!.GetValue<string>());
        var proven = restore["lastProvenRestore"]!;
        Assert.Equal(drill.Id, proven["runId"]!.GetValue<string>());
        Assert.Equal(copied.BackupId, proven["backupId"]!.GetValue<string>());
        Assert.NotNull(proven["copyAge"]);
        Assert.NotNull(proven["duration"]);
        Assert.Equal(TimeSpan.FromDays(2), TimeSpan.Parse(restore["threshold"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));

        // What the drill measured, and the restore of the newest copy (the one it took) estimated from it.
        var bytes = drill.Files.Sum(f => f.Size ?? 0);
        Assert.Equal(bytes, proven["bytes"]!.GetValue<long>());
        Assert.True(TimeSpan.Parse(proven["transfer"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > TimeSpan.Zero);
        Assert.NotNull(proven["import"]);
        var estimate = restore["estimate"]!;
        Assert.Equal(copied.BackupId, estimate["backupId"]!.GetValue<string>());
        Assert.Equal(bytes, estimate["bytes"]!.GetValue<long>());
        Assert.Equal(drill.Id, estimate["fromDrill"]!.GetValue<string>());
        Assert.True(TimeSpan.Parse(estimate["total"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > TimeSpan.Zero);
        Assert.Equal("01:00:00", restore["restoreTarget"]!.GetValue<string>());

        // The next tick deletes what the drill uploaded, and starts no second drill for the same occurrence.
        Assert.NotEmpty(ObsKeys(prefix));
        await DrillTickAsync();
        Assert.Empty(ObsKeys(prefix));
        Assert.NotNull((await Runs.GetAsync(drill.Id))!.ObsCleanedAt);
        Assert.Single(await DrillRunsAsync());
        Assert.Single(ImportJobs());
        Assert.DoesNotContain(_events, e => e["type"]!.GetValue<string>() == "graph.restore_unproven");
    }

    [Fact]
    public async Task A_drill_takes_the_newest_verified_copy_never_a_newer_received_only_one_and_the_graph_says_unverified()
    {
        var verified = await CopyOutAsync();

        // The source stops vouching for its bytes (objects encrypted at rest): the next copy is received-only.
        State.Settings.ServerSideEncryption = "kms";
        string backupNow;
        using (var response = await Api.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/graphs/{GraphA}/backups") { Headers = { { "x-functions-key", FunctionKey } } }))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            backupNow = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        }

        // This run by its id: the drill timer ticks each minute on its own and may have started a drill meanwhile.
        var receivedOnly = await WaitForRunAsync(backupNow);
        Assert.Equal(CopyLevel.ReceivedOnly, receivedOnly.Copy!.Level);
        State.Settings.ServerSideEncryption = null;

        // The graph's summary is written just after the run record: give it its moment.
        var graph = await GetAsync($"/api/graphs/{GraphA}");
        for (var wait = Stopwatch.StartNew(); graph["state"]!.GetValue<string>() != "Unverified" && wait.Elapsed < TimeSpan.FromSeconds(10);)
        {
            await Task.Delay(100);
            graph = await GetAsync($"/api/graphs/{GraphA}");
        }

        Assert.Equal("Unverified", graph["state"]!.GetValue<string>());
        Assert.Equal(verified.Id, graph["lastVerifiedCopy"]!["runId"]!.GetValue<string>());
        Assert.Equal(receivedOnly.Id, graph["unverifiedCopy"]!["runId"]!.GetValue<string>());
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !_events.Any(e => e["type"]!.GetValue<string>() == "graph.unverified"))
        {
            await Task.Delay(200);
        }

        // One event (delivery is at least once: a receiver drops a repeat by its id).
        var told = _events.Where(e => e["type"]!.GetValue<string>() == "graph.unverified").ToList();
        Assert.Single(told.Select(e => e["id"]!.GetValue<string>()).Distinct());
        Assert.Equal(receivedOnly.Id, told[0]["graph"]!["runId"]!.GetValue<string>());
        Assert.Equal("received-only", told[0]["graph"]!["copyLevel"]!.GetValue<string>());

        var drill = await DrillAsync();
        Assert.Equal(verified.BackupId, drill.BackupId);
        Assert.True(drill.Status == RunStatus.Succeeded, string.Join("; ", drill.Errors.Select(e => e.Reason)));
    }

    [Fact]
    public async Task A_copy_whose_bytes_were_changed_after_it_was_made_fails_the_drill_before_the_import()
    {
        var copied = await CopyOutAsync();
        var backup = State.Backups.Single(b => b.Id == copied.BackupId);
        var file = backup.Files.First(f => f.Size > 0);
        var blob = Destination.GetBlobClient($"orders/{copied.BackupId}/{file.Name}");
        var metadata = (await blob.GetPropertiesAsync()).Value.Metadata;
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        bytes[0] ^= 0xFF;
        await blob.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true);
        await blob.SetMetadataAsync(metadata);

        // The blob's metadata still vouches for it: the bytes read on the way to OBS do not hash as recorded.
        var drill = await DrillAsync();
        Assert.Equal(RunStatus.Failed, drill.Status);
        var error = Assert.Single(drill.Errors);
        Assert.Equal("uploading", error.Step);
        Assert.Contains(file.Name, error.Reason, StringComparison.Ordinal);
        Assert.Empty(ImportJobs());
        await AssertUnprovenAsync($"failed at uploading: {file.Name}");
    }

    [Fact]
    public async Task A_copy_whose_file_is_gone_fails_the_drill_at_its_check_and_nothing_is_uploaded()
    {
        var copied = await CopyOutAsync();
        var file = State.Backups.Single(b => b.Id == copied.BackupId).Files[0];
        await Destination.GetBlobClient($"orders/{copied.BackupId}/{file.Name}").DeleteAsync();

        var drill = await DrillAsync();
        Assert.Equal(RunStatus.Failed, drill.Status);
        var error = Assert.Single(drill.Errors);
        Assert.Equal("checking", error.Step);
        Assert.Contains($"{file.Name} is missing", error.Reason, StringComparison.Ordinal);
        Assert.Empty(State.Obs.Writes());
        Assert.Empty(ImportJobs());
        await AssertUnprovenAsync("failed at checking");
    }

    [Fact]
    public async Task An_import_that_fails_fails_the_drill_with_the_ges_reason_and_its_objects_are_deleted()
    {
        // The faults go in before the copy is made: the host's own timer may tick as soon as there is one.
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"*/graphs/{DrillTarget}/backups/import", Kind = "failJob", Reason = "The graph is too small for this backup." });
        var copied = await CopyOutAsync();
        var drill = await DrillAsync();
        Assert.Equal(RunStatus.Failed, drill.Status);
        Assert.Equal("importing", Assert.Single(drill.Errors).Step);
        Assert.Contains("The graph is too small for this backup.", drill.Errors[0].Reason, StringComparison.Ordinal);
        await AssertUnprovenAsync("failed at importing: the import job ended");

        var (_, prefix) = UploadToObsHandler.SplitObsPath(drill.ImportPath!);
        Assert.NotEmpty(ObsKeys(prefix));
        await DrillTickAsync();
        Assert.Empty(ObsKeys(prefix));
        Assert.Equal(copied.BackupId, drill.BackupId);
    }

    [Fact]
    public async Task Objects_that_read_back_from_obs_differ_from_the_copy_fail_the_drill_before_the_import()
    {
        State.Faults.Add(new FaultSpec { Method = "GET", Path = $"/obs/{RestoreBucket}/*", Kind = "corrupt", Offset = 0, Count = 0 });
        await CopyOutAsync();
        var drill = await DrillAsync();
        Assert.Equal(RunStatus.Failed, drill.Status);
        var error = Assert.Single(drill.Errors);
        Assert.Equal("verifying", error.Step);
        Assert.Contains("read back from OBS", error.Reason, StringComparison.Ordinal);
        Assert.Contains("SHA-256", error.Reason, StringComparison.Ordinal);
        Assert.Empty(ImportJobs());
        await AssertUnprovenAsync("failed at verifying");
    }

    [Fact]
    public async Task A_drill_and_a_user_restore_into_the_same_graph_never_overlap()
    {
        var copied = await CopyOutAsync();

        // A user restore into the drill target, slowed down: the drill waits for it (no run while it goes).
        State.Faults.Add(new FaultSpec { Method = "PUT", Path = $"/obs/{RestoreBucket}/*", Kind = "latency", DelayMs = 1500, Count = 2 });
        var (status, body) = await RestoreAsync(copied.BackupId!, "user-restore", DrillTarget);
        Assert.Equal(HttpStatusCode.Accepted, status);
        var userRun = body["id"]!.GetValue<string>();
        await DrillTickAsync();
        Assert.Empty(await DrillRunsAsync());
        Assert.Contains(Logs.Lines(), l => l.Contains($"is being restored by run {userRun}", StringComparison.Ordinal));
        var user = await WaitForRunAsync(userRun);
        Assert.Equal(RunStatus.Succeeded, user.Status);

        // Now the drill starts; while it runs, a user restore into its target is refused, naming the drill.
        State.Faults.Add(new FaultSpec { Method = "PUT", Path = $"/obs/{RestoreBucket}/*", Kind = "latency", DelayMs = 1500, Count = 2 });
        await DrillTickAsync();
        var started = Assert.Single(await DrillRunsAsync());
        var (refused, problem) = await RestoreAsync(copied.BackupId!, "user-restore-2", DrillTarget);
        Assert.Equal(HttpStatusCode.Conflict, refused);
        Assert.Equal(started.Id, problem["runId"]!.GetValue<string>());
        var drill = await WaitForRunAsync(started.Id);
        Assert.True(drill.Status == RunStatus.Succeeded, string.Join("; ", drill.Errors.Select(e => $"{e.Step}: {e.Reason}")));

        // The two imports into the target ran one after the other.
        var jobs = ImportJobs().OrderBy(j => j.CreatedAt).ToList();
        Assert.Equal(2, jobs.Count);
        Assert.All(jobs, j => Assert.Equal(DrillTarget, j.GraphId));
    }
}

/// <summary>A restore target no drill can meet (1 ms): the passed drill turns the graph RestoreTooSlow where operators look.</summary>
public sealed class RestoreTooSlowTests : DrillHarness
{
    protected override string RestoreTarget => "00:00:00.001";

    [Fact]
    public async Task A_restore_target_a_drill_cannot_meet_turns_the_graph_too_slow_where_operators_look()
    {
        var copied = await CopyOutAsync();
        var drill = await DrillAsync();
        Assert.True(drill.Status == RunStatus.Succeeded, string.Join("; ", drill.Errors.Select(e => e.Reason)));

        var graph = await GraphAfterDrillAsync();
        Assert.Equal("RestoreTooSlow", graph["restore"]!["state"]!.GetValue<string>());
        Assert.True(graph["restoreTooSlow"]!.GetValue<bool>());
        Assert.Contains($"the last passed drill, run {drill.Id}, took", graph["restore"]!["reason"]!.GetValue<string>(), StringComparison.Ordinal);

        var health = JsonNode.Parse(await (await Api.GetAsync("/api/health")).Content.ReadAsStringAsync())!;
        Assert.Equal("degraded", health["status"]!.GetValue<string>());
        Assert.Equal([GraphA], health["restoreTooSlowGraphs"]!.AsArray().Select(g => g!.GetValue<string>()));

        var told = Assert.Single(await _receiver!.OfTypeAsync("graph.restore_too_slow"));
        Assert.Equal(GraphA, told["graph"]!["graphId"]!.GetValue<string>());
        Assert.Equal(drill.Id, told["graph"]!["lastProvenRestoreId"]!.GetValue<string>());
        Assert.Equal(copied.BackupId, drill.BackupId);
    }
}
