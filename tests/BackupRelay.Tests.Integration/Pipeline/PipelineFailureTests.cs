using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The worker is killed (kill -9) after a step's work and before its answer reaches the host, twice per
/// queue function at most: the messages come back, and the run still ends right, with one GES backup per graph.
/// </summary>
public sealed class CrashRecoveryTests : PipelineHarness
{
    private readonly WorkerKiller _killer = new(perFunction: 2);

    public CrashRecoveryTests() => KillWorkerBeforeAnswer = _killer.ShouldKill;

    [Fact]
    public async Task A_crash_between_any_two_steps_recovers_without_a_second_backup()
    {
        await TickAsync();
        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(120));
        await AssertCopiedAsync(runs.Single(r => r.GraphId == PipelineHarness.GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == PipelineHarness.GraphB), "social");
        Assert.Single(State.Backups, b => b.GraphId == PipelineHarness.GraphA);
        Assert.Single(State.Backups, b => b.GraphId == PipelineHarness.GraphB);

        // A kill takes the other invocations in flight with it (their messages come back as second deliveries),
        // so each function was killed once or twice.
        Assert.All(new[] { FunctionNames.StartBackup, FunctionNames.PollBackupJob, FunctionNames.CopyBackupFile },
            function => Assert.InRange(_killer.Kills(function), 1, 2));
        Assert.True(LocalHost.WorkerStarts >= 4, $"{LocalHost.WorkerStarts} worker starts");
    }

    [Fact]
    public async Task Add_backup_answer_lost_is_adopted_not_repeated()
    {
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{PipelineHarness.GraphA}/backups", Kind = "lostResponse", Status = 500, Count = 1 });
        await TickAsync();
        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(90));
        await AssertCopiedAsync(runs.Single(r => r.GraphId == PipelineHarness.GraphA), "orders");
        Assert.Single(State.Backups, b => b.GraphId == PipelineHarness.GraphA);
    }
}

/// <summary>Deadlines and delivery limits.</summary>
public sealed class PipelineLimitTests : PipelineHarness
{
    protected override Dictionary<string, string?> ExtraSettings() => new() { ["Backup:JobDeadline"] = "00:00:02" };

    [Fact]
    public async Task A_job_that_never_ends_fails_the_run_at_its_deadline()
    {
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{PipelineHarness.GraphA}/backups", Kind = "hangJob" });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        var hung = runs.Single(r => r.GraphId == PipelineHarness.GraphA);
        Assert.Equal(RunStatus.Failed, hung.Status);
        Assert.Contains("deadline", hung.Errors.Single().Reason, StringComparison.Ordinal);

        // Polling waits between looks (queue delays are whole seconds): a 2 s deadline takes a few polls at most,
        // none when the first look already comes after it.
        Assert.InRange(hung.PollCount, 0, 4);
    }
}

/// <summary>A message that will never be delivered again takes its run with it: the run fails, visibly, instead of waiting forever.</summary>
public sealed class ExhaustedMessageFailsItsRunTests : PipelineHarness
{
    [Fact]
    public async Task A_poll_message_failing_every_delivery_fails_its_run_naming_the_poison_queue()
    {
        // The job status endpoint fails for good: every PollBackupJob delivery fails (after the client's own retries).
        State.Faults.Add(new FaultSpec { Method = "GET", Path = "/v2/*/graphs/*/jobs/*", Kind = "status", Status = 500, Count = 0, ErrorCode = "GES.0001", ErrorMessage = "down" });
        await TickAsync();
        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(120));
        Assert.All(runs, run =>
        {
            Assert.Equal(RunStatus.Failed, run.Status);
            Assert.Contains(run.Errors, e => e.Step == FunctionNames.PollBackupJob
                && e.Reason.Contains(QueueNames.Poison(QueueNames.PollBackupJob), StringComparison.Ordinal));
        });
    }
}

/// <summary>Bytes that do not match the source are copied again from scratch, a bounded number of times.</summary>
public sealed class CorruptedDownloadTests : PipelineHarness
{
    [Fact]
    public async Task One_corrupted_download_is_copied_again_and_the_run_succeeds()
    {
        // One download of a first file (more than 7 bytes, ≤ 16 MiB: the source declares its MD5) arrives with a flipped byte, once.
        State.Faults.Add(new FaultSpec { Path = "/obs/*br01.tar", Kind = "corrupt", Offset = 7, Count = 1 });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphB), "social");
        var retried = Assert.Single(runs.SelectMany(r => r.Files), f => f.ContentRetries > 0);
        Assert.Equal(1, retried.ContentRetries);
        Assert.Null(retried.Error);
    }

    [Fact]
    public async Task A_file_corrupted_every_time_fails_after_the_configured_attempts_naming_the_file()
    {
        State.Faults.Add(new FaultSpec { Path = "/obs/*br01.tar", Kind = "corrupt", Offset = 7, Count = 0 });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        Assert.All(runs, r => Assert.Equal(RunStatus.PartiallyFailed, r.Status));
        var run = runs.Single(r => r.GraphId == GraphA);
        var failed = Assert.Single(run.Files, f => f.Status == RunFileStatus.Failed);
        Assert.EndsWith("br01.tar", failed.Name, StringComparison.Ordinal);
        Assert.All(run.Files.Where(f => f != failed), f => Assert.Equal(RunFileStatus.Completed, f.Status));
        Assert.Equal(2, failed.ContentRetries);
        Assert.Contains("MD5 mismatch", failed.Error, StringComparison.Ordinal);
        Assert.Contains("after 3 copies from scratch", failed.Error, StringComparison.Ordinal);
        Assert.Contains(run.Errors, e => e.Reason.StartsWith(failed.Name, StringComparison.Ordinal));
    }
}
