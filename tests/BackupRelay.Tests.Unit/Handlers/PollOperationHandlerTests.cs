using System.Text.Json;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Operations;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Unit.Handlers;

/// <summary>The operation poller (imports, engine restores) on fakes: the same numbered polls, and what an ended job records.</summary>
public sealed class PollOperationHandlerTests : HandlerFixture
{
    private PollOperationHandler Handler => new(Runs, Polls, GesClient, null!, Sent, Options, Clock, NullLogger<PollOperationHandler>.Instance);

    private Task<HandlerResult> PollAsync(int attempt) =>
        Handler.HandleAsync(JsonSerializer.Serialize(new PollOperationMessage(MessageParser.CurrentVersion, "rfc-1", attempt), BackupRelayJson.Default.PollOperationMessage),
            1, CancellationToken.None);

    private void Importing(int polls = 0)
    {
        var now = Clock.GetUtcNow();
        Runs.Put(new RunRecord
        {
            Id = "rfc-1", Kind = RunKind.RestoreFromCopy, GraphId = Graph, Status = RunStatus.Running, Step = RunStep.Importing, JobId = "job-1",
            PollCount = polls, CreatedAt = now, UpdatedAt = now, Deadline = now.AddHours(1),
        });
    }

    [Fact]
    public async Task A_running_import_is_polled_again_and_counted()
    {
        Importing(polls: 4);
        Ges.Jobs["job-1"] = new GesJob { JobId = "job-1", Status = "running" };

        await PollAsync(4);

        Assert.Equal(5, Assert.Single(Sent.OfType<PollOperationMessage>()).Attempt);
        Assert.Equal(5, Runs["rfc-1"].PollCount);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(12)]
    public async Task A_running_import_is_polled_at_the_operation_interval_however_long_it_runs(int attempt)
    {
        // Someone waits on a restore: its end is seen within the interval, never after a backed-off wait.
        Settings.OperationPollInterval = TimeSpan.FromSeconds(3);
        Importing(polls: attempt);
        Ges.Jobs["job-1"] = new GesJob { JobId = "job-1", Status = "running" };

        await PollAsync(attempt);

        Assert.Equal((TimeSpan?)TimeSpan.FromSeconds(3), Assert.Single(Sent.Sent).Delay);
    }

    [Fact]
    public async Task A_successful_import_ends_the_run_with_the_backup_it_made()
    {
        Importing();
        Ges.Jobs["job-1"] = new GesJob { JobId = "job-1", Status = "success", JobDetail = JsonDocument.Parse("""{"backup_id":"b-imported"}""").RootElement };

        await PollAsync(0);

        var run = Runs["rfc-1"];
        Assert.Equal((RunStatus.Succeeded, RunStep.Done, "b-imported"), (run.Status, run.Step, run.ImportedBackupId));
        Assert.Empty(Sent.Sent);

        // The same poll again (a duplicate) changes nothing.
        var writes = Runs.Writes;
        await PollAsync(0);
        Assert.Equal(writes, Runs.Writes);
    }

    [Fact]
    public async Task A_failed_import_fails_the_run_at_importing_with_the_reason()
    {
        Importing();
        Ges.Jobs["job-1"] = new GesJob { JobId = "job-1", Status = "failed", FailReason = "too small" };

        await PollAsync(0);

        var error = Assert.Single(Runs["rfc-1"].Errors);
        Assert.Equal(("importing", "the import job ended failed: too small"), (error.Step, error.Reason));
    }

    [Fact]
    public async Task An_import_still_running_past_the_deadline_fails_and_is_not_polled_again()
    {
        Importing();
        Ges.Jobs["job-1"] = new GesJob { JobId = "job-1", Status = "running" };
        Clock.Advance(TimeSpan.FromHours(2));

        await PollAsync(0);

        Assert.Equal(RunStatus.Failed, Runs["rfc-1"].Status);
        Assert.StartsWith("deadline passed", Runs["rfc-1"].Errors[0].Reason, StringComparison.Ordinal);
        Assert.Empty(Sent.Sent);
    }
}
