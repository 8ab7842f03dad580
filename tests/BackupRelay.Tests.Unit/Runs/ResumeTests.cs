using BackupRelay.Runs;

namespace BackupRelay.Tests.Unit.Runs;

/// <summary>A replayed poison message resumes only the backup run it failed, and that run ends again as any run does.</summary>
public sealed class ResumeTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 2, 0, 0, TimeSpan.Zero);
    private const string Poison = "backup-start-poison";

    private static RunRecord FailedByPoison()
    {
        var run = RunRecord.NewBackup("r1", "g1", "schedule", null, Now, TimeSpan.FromHours(6));
        run.Fail(Now.AddMinutes(1), "StartBackup", $"its StartBackup message failed 5 deliveries and goes to {Poison}; last: down");
        return run;
    }

    [Fact]
    public void A_backup_run_failed_by_its_poisoned_message_resumes_at_the_step_and_ends_again()
    {
        var run = FailedByPoison();
        Assert.NotNull(run.Copy);
        Assert.True(run.MarkNotificationQueued());

        Assert.Null(run.Resume(Now.AddMinutes(5), Poison, RunStep.Starting));
        Assert.Equal(RunStatus.Running, run.Status);
        Assert.Equal(RunStep.Starting, run.Step);
        Assert.False(run.IsFinished);
        Assert.Null(run.CompletedAt);
        Assert.Null(run.Copy);
        Assert.False(run.NotificationQueued);
        Assert.Single(run.Errors);

        run.Succeed(Now.AddMinutes(9));
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.NotNull(run.Copy);
        Assert.True(run.MarkNotificationQueued());
    }

    [Fact]
    public void Anything_else_is_refused_and_the_record_left_as_it_is()
    {
        var other = RunRecord.NewBackup("r2", "g1", "schedule", null, Now, TimeSpan.FromHours(6));
        other.Fail(Now, "copying", "the source's bytes did not match");
        Assert.Contains("did not fail because", other.Resume(Now, Poison, RunStep.Copying), StringComparison.Ordinal);
        Assert.Equal(RunStatus.Failed, other.Status);

        var running = RunRecord.NewBackup("r3", "g1", "schedule", null, Now, TimeSpan.FromHours(6));
        Assert.Contains("not failed", running.Resume(Now, Poison, RunStep.Starting), StringComparison.Ordinal);

        var succeeded = RunRecord.NewBackup("r4", "g1", "schedule", null, Now, TimeSpan.FromHours(6));
        succeeded.Succeed(Now);
        Assert.Contains("Succeeded", succeeded.Resume(Now, Poison, RunStep.Starting), StringComparison.Ordinal);

        var import = RunRecord.NewImport("r5", "g1", "bucket/x/", "job-1", Now, TimeSpan.FromHours(1));
        import.Fail(Now, "PollOperation", "its PollOperation message was parked in operation-poll-poison: bad");
        Assert.Contains("new request", import.Resume(Now, "operation-poll-poison", RunStep.Importing), StringComparison.Ordinal);
        Assert.Equal(RunStatus.Failed, import.Status);
    }
}
