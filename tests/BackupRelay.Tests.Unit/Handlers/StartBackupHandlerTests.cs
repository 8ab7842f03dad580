using System.Text.Json;
using BackupRelay.Backups;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Unit.Handlers;

/// <summary>The backup starter on fakes: one add-backup per run across duplicates, crashes and a backup already running.</summary>
public sealed class StartBackupHandlerTests : HandlerFixture
{
    public StartBackupHandlerTests() => Ges.Graphs[Graph] = new GesGraph { Id = Graph, Name = "orders", Status = "200" };

    private StartBackupHandler Handler => new(Runs, Submit, GesClient, Sent, Options, Clock, NullLogger<StartBackupHandler>.Instance);

    private Task<HandlerResult> StartAsync(string nonce, string graph = Graph) =>
        Handler.HandleAsync(JsonSerializer.Serialize(new StartBackupMessage(MessageParser.CurrentVersion, "run-1", graph, "http", null, nonce),
            BackupRelayJson.Default.StartBackupMessage), 1, CancellationToken.None);

    private int AddBackups => Ges.Calls.Count(c => c.StartsWith("add-backup", StringComparison.Ordinal));

    [Fact]
    public async Task The_first_delivery_creates_the_run_starts_the_backup_and_sends_the_first_poll()
    {
        Assert.Equal(HandlerResult.Done, await StartAsync("n1"));

        var run = Runs["run-1"];
        Assert.Equal((RunStatus.Running, RunStep.BackingUp, "job-new", "b-new", "orders"), (run.Status, run.Step, run.JobId, run.BackupId, run.GraphName));
        Assert.Equal(1, AddBackups);
        var poll = Assert.Single(Sent.Sent);
        Assert.Equal(new PollBackupJobMessage(MessageParser.CurrentVersion, "run-1", 0), poll.Message);
        Assert.Equal(Settings.PollInitialDelay, poll.Delay);
    }

    [Fact]
    public async Task A_duplicate_message_while_the_first_holds_its_claim_stands_aside()
    {
        // The first delivery claimed the submission and is still talking to GES.
        Ges.AddBackup = _ => throw new InvalidOperationException("the first delivery is still in add-backup");
        await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync("n1"));
        Assert.Equal("n1", Runs["run-1"].SubmitClaim);

        Assert.Equal(HandlerResult.Done, await StartAsync("n2"));

        Assert.Equal(1, AddBackups); // only the first one's, which threw
        Assert.Empty(Sent.Sent);
        Assert.Null(Runs["run-1"].JobId);
    }

    [Fact]
    public async Task The_claimants_redelivery_after_a_crash_adopts_the_backup_it_had_started()
    {
        // The first delivery called add-backup, then died before recording the job.
        Ges.AddBackup = _ => throw new InvalidOperationException("crash after add-backup");
        await Assert.ThrowsAsync<InvalidOperationException>(() => StartAsync("n1"));
        Ges.Backups.Add(new GesBackup { Id = "b-started", GraphId = Graph, BackupMethod = "manual", Status = "backing_up",
            StartTimestamp = Clock.GetUtcNow().ToUnixTimeMilliseconds() });
        Ges.Jobs["job-started"] = new GesJob { JobId = "job-started", Status = "running", JobType = "BackupGraph",
            BeginTime = Clock.GetUtcNow().ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) };
        Ges.AddBackup = _ => throw new InvalidOperationException("add-backup must not be called again");

        Assert.Equal(HandlerResult.Done, await StartAsync("n1"));

        Assert.Equal(("job-started", "b-started"), (Runs["run-1"].JobId, Runs["run-1"].BackupId));
        Assert.Single(Sent.OfType<PollBackupJobMessage>());
    }

    [Fact]
    public async Task A_redelivery_that_finds_the_job_recorded_but_no_poll_counted_sends_the_first_poll_again()
    {
        await StartAsync("n1");
        Sent.Sent.Clear();

        Assert.Equal(HandlerResult.Done, await StartAsync("n1"));

        Assert.Equal(1, AddBackups);
        Assert.Equal(0, Assert.Single(Sent.OfType<PollBackupJobMessage>()).Attempt);
    }

    [Fact]
    public async Task A_backup_already_running_is_adopted_and_none_listed_yet_comes_back_later()
    {
        Ges.AddBackup = _ => throw FakeGesApi.Error(HuaweiCloudErrorKind.Conflict, "GES.7002");

        var result = await StartAsync("n1");
        Assert.Equal(HandlerOutcome.Retry, result.Outcome);
        Assert.Contains("GES.7002", result.Reason, StringComparison.Ordinal);

        Ges.Backups.Add(new GesBackup { Id = "b-running", GraphId = Graph, Status = "backing_up" });
        Ges.Jobs["job-running"] = new GesJob { JobId = "job-running", Status = "running", JobType = "BackupGraph" };
        Assert.Equal(HandlerResult.Done, await StartAsync("n1"));
        Assert.Equal("job-running", Runs["run-1"].JobId);
    }

    [Fact]
    public async Task A_graph_not_configured_or_not_running_fails_the_run_at_starting_without_add_backup()
    {
        await StartAsync("n1", graph: "g-unknown");
        Assert.Equal(("starting", "graph g-unknown is not configured (Backup__Graphs)"),
            (Assert.Single(Runs["run-1"].Errors).Step, Runs["run-1"].Errors[0].Reason));

        Ges.Graphs[Graph] = Ges.Graphs[Graph] with { Status = "900" };
        await Handler.HandleAsync(JsonSerializer.Serialize(new StartBackupMessage(MessageParser.CurrentVersion, "run-2", Graph, "http", null, "n"),
            BackupRelayJson.Default.StartBackupMessage), 1, CancellationToken.None);
        Assert.Equal("graph orders is not running (status 900)", Assert.Single(Runs["run-2"].Errors).Reason);
        Assert.Equal(0, AddBackups);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("""{"v":1,"runId":"../x","graphId":"g","trigger":"http"}""")]
    [InlineData("""{"v":99,"runId":"r","graphId":"g","trigger":"http"}""")]
    public async Task A_malformed_message_is_parked(string message)
    {
        Assert.Equal(HandlerOutcome.Park, (await Handler.HandleAsync(message, 1, CancellationToken.None)).Outcome);
        Assert.Empty(Ges.Calls);
    }
}
