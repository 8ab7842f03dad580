using System.Text.Json;
using BackupRelay.Backups;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Unit.Handlers;

/// <summary>The backup-job poller's decisions, on fakes: which polls it acts on, when it polls again, what a finished job leads to.</summary>
public sealed class PollBackupJobHandlerTests : HandlerFixture
{
    private PollBackupJobHandler Handler => new(Runs, Polls, GesClient, Sent, Options, Clock, NullLogger<PollBackupJobHandler>.Instance);

    private Task<HandlerResult> PollAsync(string runId, int attempt) =>
        Handler.HandleAsync(JsonSerializer.Serialize(new PollBackupJobMessage(MessageParser.CurrentVersion, runId, attempt), BackupRelayJson.Default.PollBackupJobMessage),
            1, CancellationToken.None);

    private void JobIs(string status, string? reason = null) => Ges.Jobs["job-1"] = new GesJob { JobId = "job-1", Status = status, FailReason = reason };

    [Fact]
    public async Task A_running_job_is_polled_again_later_and_this_poll_counted()
    {
        BackingUp(polls: 2);
        JobIs("running");

        Assert.Equal(HandlerResult.Done, await PollAsync("run-1", 2));

        var next = Assert.Single(Sent.Sent);
        Assert.Equal(new PollBackupJobMessage(MessageParser.CurrentVersion, "run-1", 3), next.Message);
        Assert.Equal(Settings.PollDelay(3), next.Delay);
        Assert.Equal(3, Runs["run-1"].PollCount);
    }

    [Fact]
    public async Task A_duplicate_of_a_counted_poll_is_dropped_without_asking_ges()
    {
        BackingUp(polls: 3);
        JobIs("running");

        Assert.Equal(HandlerResult.Done, await PollAsync("run-1", 2));

        Assert.Empty(Ges.Calls);
        Assert.Empty(Sent.Sent);
        Assert.Equal(3, Runs["run-1"].PollCount);
    }

    [Fact]
    public async Task A_poll_that_arrives_before_the_previous_was_counted_comes_back_later()
    {
        BackingUp(polls: 1);

        var result = await PollAsync("run-1", 2);

        Assert.Equal(HandlerOutcome.Retry, result.Outcome);
        Assert.Contains("poll 2 arrived before poll 1 was counted", result.Reason, StringComparison.Ordinal);
        Assert.Empty(Ges.Calls);
    }

    [Fact]
    public async Task A_poll_of_an_ended_run_does_nothing()
    {
        var run = BackingUp();
        run.Fail(Clock.GetUtcNow(), RunStep.BackingUp, "earlier");
        Runs.Put(run);

        Assert.Equal(HandlerResult.Done, await PollAsync("run-1", 0));
        Assert.Empty(Ges.Calls);
    }

    [Fact]
    public async Task Past_its_deadline_a_running_job_fails_the_run_and_the_chain_ends()
    {
        BackingUp(deadlineIn: TimeSpan.FromMinutes(1));
        JobIs("running");
        Clock.Advance(TimeSpan.FromMinutes(2));

        await PollAsync("run-1", 0);

        var run = Runs["run-1"];
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal("backing-up", Assert.Single(run.Errors).Step);
        Assert.StartsWith("deadline passed: the backup job was still running", run.Errors[0].Reason, StringComparison.Ordinal);
        Assert.Empty(Sent.Sent);
    }

    [Fact]
    public async Task A_failed_job_fails_the_run_with_the_ges_reason()
    {
        BackingUp();
        JobIs("failed", "disk full");

        await PollAsync("run-1", 0);

        var run = Runs["run-1"];
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal("the backup job ended failed: disk full", Assert.Single(run.Errors).Reason);
    }

    [Fact]
    public async Task A_finished_job_lists_the_files_sends_one_copy_each_and_a_redelivery_sends_none()
    {
        BackingUp();
        JobIs("success");
        Ges.Backups.Add(new GesBackup { Id = "b-1", GraphId = Graph, GraphName = "orders", BackupMethod = "manual", Status = "success",
            StartTimestamp = Clock.GetUtcNow().AddSeconds(5).ToUnixTimeMilliseconds() });
        Ges.Files["b-1"] = [new GesBackupFile { Name = "a.zip", Size = 10 }, new GesBackupFile { Name = "b.zip", Size = 20 }];

        await PollAsync("run-1", 0);

        var run = Runs["run-1"];
        Assert.Equal(("b-1", RunStep.Copying, "orders", 1), (run.BackupId, run.Step, run.GraphName, run.PollCount));
        Assert.Equal(["a.zip", "b.zip"], run.Files.Select(f => f.Name));
        Assert.Equal(["a.zip", "b.zip"], Sent.OfType<CopyBackupFileMessage>().Select(m => m.File));

        // The same poll delivered again: already counted, so nothing is listed or sent twice.
        await PollAsync("run-1", 0);
        Assert.Equal(2, Sent.Sent.Count);
    }

    [Fact]
    public async Task A_backup_another_run_copies_is_followed_not_copied_and_ends_as_that_run_ends()
    {
        BackingUp();
        JobIs("success");
        Ges.Backups.Add(new GesBackup { Id = "b-1", GraphId = Graph, BackupMethod = "manual", Status = "success",
            StartTimestamp = Clock.GetUtcNow().ToUnixTimeMilliseconds() });
        Runs.ClaimCopy("b-1", "leader");
        var leader = BackingUp("leader");

        await PollAsync("run-1", 0);

        var run = Runs["run-1"];
        Assert.Equal(("leader", RunStep.Following, 1), (run.FollowsRunId, run.Step, run.PollCount));
        Assert.Empty(Sent.OfType<CopyBackupFileMessage>());
        Assert.Single(Sent.OfType<PollBackupJobMessage>());

        leader.Files = [new RunFile { Name = "a.zip", Status = RunFileStatus.Completed }];
        leader.Succeed(Clock.GetUtcNow());
        Runs.Put(leader);
        await PollAsync("run-1", 1);

        run = Runs["run-1"];
        Assert.Equal((RunStatus.Succeeded, RunStep.Done), (run.Status, run.Step));
        Assert.Equal("a.zip", Assert.Single(run.Files).Name);
    }

    [Fact]
    public async Task A_job_ges_no_longer_knows_fails_the_run()
    {
        BackingUp();

        await PollAsync("run-1", 0);

        Assert.Contains("the backup job job-1 no longer exists (GES.7007)", Assert.Single(Runs["run-1"].Errors).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_message_for_a_run_that_does_not_exist_is_parked()
    {
        Assert.Equal(HandlerOutcome.Park, (await PollAsync("nobody", 0)).Outcome);
    }
}
