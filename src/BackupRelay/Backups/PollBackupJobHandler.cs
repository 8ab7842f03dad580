using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Backups;

/// <summary>
/// Looks at the run's GES job once. Not finished: polls again later, the wait doubling up to a
/// maximum, until the run's deadline. Succeeded: finds the backup, lists its files and enqueues one
/// copy per file. Failed: fails the run with the job's reason. Polls are numbered, so a duplicated
/// message cannot start a second polling chain.
/// </summary>
public sealed partial class PollBackupJobHandler(
    RunStore runs,
    GesClient ges,
    WorkQueues queues,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<PollBackupJobHandler> logger) : IQueueFunction
{
    public string Name => FunctionNames.PollBackupJob;
    public string Queue => QueueNames.PollBackupJob;

    public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        var (poll, run, stop) = await MessageParser.ReadRunMessageAsync(message, BackupRelayJson.Default.PollBackupJobMessage,
            m => m.V, m => m.RunId, runs, cancellationToken);
        if (stop is not null)
        {
            return stop;
        }

        if (run!.IsFinished || poll!.Attempt < run.PollCount || run.JobId is null)
        {
            return HandlerResult.Done;
        }

        if (poll.Attempt > run.PollCount)
        {
            // Sent just before the previous poll was counted ("send first, count after"): not a
            // duplicate, only early. Dropping it would end the chain; it comes back after the retry delay.
            return HandlerResult.Retry($"poll {poll.Attempt} arrived before poll {run.PollCount} was counted");
        }

        if (run.FollowsRunId is { } leader)
        {
            return await FollowAsync(run, leader, poll.Attempt, cancellationToken);
        }

        GesJob job;
        try
        {
            job = await ges.GetJobAsync(run.GraphId, run.JobId, cancellationToken);
        }
        catch (HuaweiCloudException ex) when (ex.Kind == HuaweiCloudErrorKind.NotFound)
        {
            await FailAsync(run.Id, $"the backup job {run.JobId} no longer exists ({ex.ErrorCode})", cancellationToken);
            return HandlerResult.Done;
        }

        var now = time.GetUtcNow();
        if (!job.IsTerminal)
        {
            if (run.Deadline is { } deadline && now > deadline)
            {
                await FailAsync(run.Id, $"deadline passed: the backup job was still {job.Status} at {deadline:o}", cancellationToken);
                return HandlerResult.Done;
            }

            return await PollAgainAsync(run.Id, poll.Attempt, cancellationToken);
        }

        if (job.State != GesJobState.Success)
        {
            await FailAsync(run.Id, $"the backup job ended {job.Status}: {job.FailReason ?? "no reason given"}", cancellationToken);
            return HandlerResult.Done;
        }

        var backups = await ges.ListAllBackupsAsync(run.GraphId, cancellationToken);
        var backup = run.BackupId is { } known
            ? backups.FirstOrDefault(b => b.Id == known)
            : backups
                .Where(b => b.BackupMethod == "manual" && b.Status == "success" && b.StartedAt >= (run.SubmittedAt ?? run.CreatedAt) - options.Value.ClockSkewAllowance)
                .OrderByDescending(b => b.StartedAt)
                .FirstOrDefault();
        if (backup is null)
        {
            await FailAsync(run.Id, run.BackupId is null
                ? "the job succeeded but no manual backup started by this run is listed"
                : $"the backup {run.BackupId} is not listed", cancellationToken);
            return HandlerResult.Done;
        }

        // One copy per GES backup: runs that adopted the same backup (duplicate requests, a schedule and a
        // backup-now at once) follow the run that copies it instead of copying the same files again.
        var owner = await runs.ClaimCopyAsync(backup.Id, run.Id, cancellationToken);
        if (owner != run.Id)
        {
            var following = await runs.UpdateAsync(run.Id, r =>
            {
                if (r.IsFinished || r.PollCount != poll.Attempt)
                {
                    return false;
                }

                RecordBackup(r, backup);
                r.FollowsRunId = owner;
                r.Step = RunSteps.Following;
                r.UpdatedAt = time.GetUtcNow();
                return true;
            }, cancellationToken);
            Log.Following(logger, run.Id, backup.Id, owner);
            return following.IsFinished || following.PollCount != poll.Attempt
                ? HandlerResult.Done
                : await PollAgainAsync(run.Id, poll.Attempt, cancellationToken);
        }

        // Record first, then send, then count this poll done: a delivery that dies half-way is redone whole.
        var files = await ges.GetDownloadLinksAsync(run.GraphId, backup.Id, cancellationToken);
        var stored = await runs.UpdateAsync(run.Id, r =>
        {
            if (r.IsFinished || r.PollCount != poll.Attempt)
            {
                return false;
            }

            RecordBackup(r, backup);
            if (r.Files.Count == 0)
            {
                r.Files = [.. files.Files.Select(f => new RunFile { Name = f.Name, SizeKb = f.Size })];
            }

            r.Step = RunSteps.Copying;
            r.UpdatedAt = time.GetUtcNow();
            return true;
        }, cancellationToken);
        if (stored.IsFinished || stored.PollCount != poll.Attempt)
        {
            return HandlerResult.Done;
        }

        if (stored.Files.Count == 0)
        {
            await FailAsync(run.Id, "the backup lists no files", cancellationToken);
            return HandlerResult.Done;
        }

        Log.BackupReady(logger, run.Id, backup.Id, stored.Files.Count);
        foreach (var file in stored.Files.Where(f => f.Status is RunFileStatus.Pending or RunFileStatus.Copying))
        {
            await queues.SendCopyAsync(new CopyBackupFileMessage(MessageParser.CurrentVersion, run.Id, file.Name, null), cancellationToken);
        }

        await CountPollAsync(run.Id, poll.Attempt, cancellationToken);
        return HandlerResult.Done;
    }

    /// <summary>The backup as GES lists it, on the run record.</summary>
    private static void RecordBackup(RunRecord run, GesBackup backup)
    {
        run.BackupId = backup.Id;
        run.Backup = new RunBackupInfo(backup.Id, backup.Name, backup.BackupMethod, backup.Status, backup.Size,
            backup.StartedAt, backup.EndedAt, backup.Duration, backup.DataStoreVersion, backup.Arch);
        run.GraphName ??= backup.GraphName;
    }

    /// <summary>A following run looks at the run that copies its backup: when that one ends, this one ends the same way, with its files.</summary>
    private async Task<HandlerResult> FollowAsync(RunRecord run, string leaderId, int attempt, CancellationToken cancellationToken)
    {
        var leader = await runs.GetAsync(leaderId, cancellationToken);
        var now = time.GetUtcNow();
        if (leader is null)
        {
            await FailAsync(run.Id, $"the run {leaderId} that copies backup {run.BackupId} no longer exists", cancellationToken);
            return HandlerResult.Done;
        }

        if (!leader.IsFinished)
        {
            if (run.Deadline is { } deadline && now > deadline)
            {
                await FailAsync(run.Id, $"deadline passed: run {leaderId}, which copies backup {run.BackupId}, had not finished at {deadline:o}", cancellationToken);
                return HandlerResult.Done;
            }

            return await PollAgainAsync(run.Id, attempt, cancellationToken);
        }

        await runs.UpdateAsync(run.Id, r =>
        {
            if (r.IsFinished)
            {
                return false;
            }

            r.Files = leader.Files;
            r.Status = leader.Status;
            r.Step = RunSteps.Done;
            r.CompletedAt = now;
            r.UpdatedAt = now;
            if (leader.Status != RunStatus.Succeeded)
            {
                r.Errors.Add(new RunError(now, RunSteps.Following, $"run {leaderId}, which copied backup {r.BackupId}, ended {leader.Status}"));
            }

            return true;
        }, cancellationToken);
        Log.Followed(logger, run.Id, leaderId, leader.Status);
        return HandlerResult.Done;
    }

    private async Task<HandlerResult> PollAgainAsync(string runId, int attempt, CancellationToken cancellationToken)
    {
        // Send first, count after: a duplicate of the next poll is dropped by its number, a lost one is not possible.
        await queues.SendPollAsync(new PollBackupJobMessage(MessageParser.CurrentVersion, runId, attempt + 1), options.Value.PollDelay(attempt + 1), cancellationToken);
        await CountPollAsync(runId, attempt, cancellationToken);
        return HandlerResult.Done;
    }

    private Task CountPollAsync(string runId, int attempt, CancellationToken cancellationToken) =>
        runs.UpdateAsync(runId, r =>
        {
            if (r.PollCount != attempt)
            {
                return false;
            }

            r.PollCount++;
            r.UpdatedAt = time.GetUtcNow();
            return true;
        }, cancellationToken);

    private Task FailAsync(string runId, string reason, CancellationToken cancellationToken)
    {
        Log.RunFailed(logger, runId, reason);
        return runs.FailAsync(runId, time.GetUtcNow(), RunSteps.BackingUp, reason, cancellationToken);
    }

    private static partial class Log
    {
        [LoggerMessage(45, LogLevel.Information, "Run {RunId}: backup {BackupId} is ready with {Files} files; copying")]
        public static partial void BackupReady(ILogger logger, string runId, string backupId, int files);

        [LoggerMessage(47, LogLevel.Information, "Run {RunId}: backup {BackupId} is already copied by run {Owner}; following it")]
        public static partial void Following(ILogger logger, string runId, string backupId, string owner);

        [LoggerMessage(48, LogLevel.Information, "Run {RunId} ended as run {Leader} did: {Status}")]
        public static partial void Followed(ILogger logger, string runId, string leader, RunStatus status);

        [LoggerMessage(46, LogLevel.Error, "Run {RunId} failed: {Reason}")]
        public static partial void RunFailed(ILogger logger, string runId, string reason);
    }
}
