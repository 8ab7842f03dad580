using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.HuaweiCloud.Ges;

namespace BackupRelay.Tests.Integration.HuaweiCloud;

/// <summary>Every GES operation against the emulator, once with IAM tokens and once with AK/SK.</summary>
public abstract class GesClientTests : ClientHarness
{
    private const string GraphId = DemoSeed.GraphId;

    private async Task<string> CompletedBackupAsync()
    {
        var added = await Ges.AddBackupAsync(GraphId);
        Advance(TimeSpan.FromSeconds(10));
        return added.BackupId!;
    }

    [Fact]
    public async Task Add_backup_then_follow_the_job_to_success()
    {
        var added = await Ges.AddBackupAsync(GraphId);
        Assert.False(string.IsNullOrEmpty(added.JobId));
        Assert.False(string.IsNullOrEmpty(added.BackupId));
        var job = await Ges.GetJobAsync(GraphId, added.JobId);

        // Pending for the emulator's first second, then running: on a loaded machine either is seen.
        Assert.Contains(job.State, new[] { GesJobState.Pending, GesJobState.Running });
        Assert.False(job.IsTerminal);
        Advance(TimeSpan.FromSeconds(10));
        job = await Ges.GetJobAsync(GraphId, added.JobId);
        Assert.Equal(GesJobState.Success, job.State);
        Assert.True(job.IsTerminal);
        Assert.Equal("demo_graph", job.RelatedGraph);
        Assert.NotNull(job.BeganAt);
        Assert.True(job.EndedAt > job.BeganAt);
    }

    [Fact]
    public async Task Add_backup_without_backup_id_in_the_answer()
    {
        State.Settings.AddBackupReturnsBackupId = false;
        var added = await Ges.AddBackupAsync(GraphId);
        Assert.Null(added.BackupId);

        // The answer still names the job, and the backup it made is found through the job and the list.
        Assert.False(string.IsNullOrEmpty(added.JobId));
        var job = await Ges.GetJobAsync(GraphId, added.JobId);
        Assert.Equal(GraphId, State.Jobs[added.JobId].GraphId);
        Assert.False(job.IsTerminal);
        var listed = Assert.Single(await Ges.ListAllBackupsAsync(GraphId));
        Assert.Equal(State.Backups.Single(b => b.GraphId == GraphId).Id, listed.Id);
    }

    [Fact]
    public async Task Second_backup_while_one_runs_is_a_conflict()
    {
        await Ges.AddBackupAsync(GraphId);
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.AddBackupAsync(GraphId));
        Assert.Equal(HuaweiCloudErrorKind.Conflict, error.Kind);
        Assert.Equal("GES.7002", error.ErrorCode);
        Assert.Equal(400, (int)error.StatusCode!);
    }

    [Fact]
    public async Task Unknown_graph_and_job_are_not_found()
    {
        var graph = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.AddBackupAsync("no-such-graph"));
        Assert.Equal(HuaweiCloudErrorKind.NotFound, graph.Kind);
        Assert.Equal("GES.7000", graph.ErrorCode);
        Assert.False(string.IsNullOrEmpty(graph.RequestId));
        var job = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetJobAsync(GraphId, "ff8080815f9a3c84015f9a438ff70001"));
        Assert.Equal("GES.7007", job.ErrorCode);
        Assert.Equal(HuaweiCloudErrorKind.NotFound, job.Kind);
    }

    [Fact]
    public async Task Stopped_graph_refuses_with_graph_not_running()
    {
        State.Graphs[GraphId].Status = "900";
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.AddBackupAsync(GraphId));
        Assert.True(error.IsGraphNotRunning);
        Assert.Equal(HuaweiCloudErrorKind.Invalid, error.Kind);
    }

    [Fact]
    public async Task Listing_reads_every_page()
    {
        State.AddGraph(new SeedGraph
        {
            Id = "many", Name = "many", ProjectId = DemoSeed.ProjectId,
            Backups = [.. Enumerable.Range(0, 230).Select(i => new SeedBackup { Id = $"b{i:000}" })],
        });
        var page = await Ges.ListBackupsAsync("many", 10, 5);
        Assert.Equal(230, page.BackupCount);
        Assert.Equal(["b010", "b011", "b012", "b013", "b014"], page.BackupList.Select(b => b.Id));
        var all = await Ges.ListAllBackupsAsync("many");
        Assert.Equal(230, all.Count);
        Assert.Equal(230, all.Select(b => b.Id).Distinct().Count());
        Assert.Equal(3, Requests("GET", "/graphs/many/backups").Count - 1);
    }

    [Fact]
    public async Task Download_links_are_valid_for_an_hour()
    {
        var backupId = await CompletedBackupAsync();
        var files = await Ges.GetDownloadLinksAsync(GraphId, backupId);
        Assert.Equal(2, files.Files.Count);
        Assert.All(files.Files, f => Assert.StartsWith(Emulator.BaseAddress.ToString(), f.DownloadLink, StringComparison.Ordinal));
        Assert.Equal(3072, files.Files[0].Size);
        var expires = files.Files[0].ExpiresAt(State.Now);
        Assert.InRange((expires - State.Now).TotalSeconds, 3590, 3600);
    }

    [Fact]
    public async Task Import_creates_an_import_backup()
    {
        // The call's shape; what the import path must hold is the emulator's own test (GesTests).
        Emulator.State.Settings.ImportChecksObjects = false;
        var job = await Ges.ImportBackupAsync(GraphId, "obs-bucket/backups/");
        Advance(TimeSpan.FromSeconds(10));
        var done = await Ges.GetJobAsync(GraphId, job.JobId);
        Assert.Equal(GesJobState.Success, done.State);
        Assert.Equal("import", Assert.Single(await Ges.ListAllBackupsAsync(GraphId)).BackupMethod);
    }

    [Fact]
    public async Task Jobs_are_listed_with_filters()
    {
        await CompletedBackupAsync();
        await Ges.AddBackupAsync(GraphId);
        var today = DateOnly.FromDateTime(State.Now.UtcDateTime);
        var page = await Ges.ListJobsAsync(new GesJobQuery(Status: "pending", GraphName: "demo_graph", StartDate: today, EndDate: today));
        Assert.Equal(1, page.JobCount);
        Assert.Equal(GesJobState.Pending, Assert.Single(page.JobList).State);
        Assert.Equal(2, (await Ges.ListJobsAsync()).JobCount);
    }

    [Fact]
    public async Task Bad_ids_are_refused_before_any_call()
    {
        State.ClearRequests();
        await Assert.ThrowsAsync<ArgumentException>(() => Ges.AddBackupAsync("../other"));
        await Assert.ThrowsAsync<ArgumentException>(() => Ges.GetJobAsync(GraphId, ""));
        await Assert.ThrowsAsync<ArgumentException>(() => Ges.GetDownloadLinksAsync(GraphId, "a&b=c"));
        await Assert.ThrowsAsync<ArgumentException>(() => Ges.ImportBackupAsync(GraphId, " "));
        Assert.Empty(State.RecordedRequests());
    }
}

public sealed class GesClientWithTokenTests : GesClientTests;

public sealed class GesClientWithAkSkTests : GesClientTests
{
    protected override bool UseAkSk => true;

    [Fact]
    public async Task No_token_is_requested_in_ak_sk_mode()
    {
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        Assert.Equal(0, TokenRequests);
    }
}
