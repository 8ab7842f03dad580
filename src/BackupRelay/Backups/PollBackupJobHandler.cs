using BackupRelay.Configuration;
using BackupRelay.Copying;
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
    IRunRecords runs,
    NumberedPolls polls,
    GesClient ges,
    IWorkSender queues,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<PollBackupJobHandler> logger) : RunStepFunction<PollBackupJobMessage>(runs, BackupRelayJson.Default.PollBackupJobMessage)
{
    public override string Queue => QueueNames.PollBackupJob;

    protected override async Task<HandlerResult> HandleAsync(PollBackupJobMessage poll, RunRecord run, long dequeueCount, CancellationToken cancellationToken)
    {
        if (NumberedPolls.Admit(run!, poll!.Attempt) is { } notNow)
        {
            return notNow;
        }

        if (run!.FollowsRunId is { } leader)
        {
            return await FollowAsync(run, leader, poll.Attempt, cancellationToken);
        }

        GesJob job;
        try
        {
            job = await ges.GetJobAsync(run.GraphId, run.JobId!, cancellationToken);
        }
        catch (HuaweiCloudException ex) when (ex.Kind == HuaweiCloudErrorKind.NotFound)
        {
            return await FailAsync(run.Id, $"the backup job {run.JobId} no longer exists ({ex.ErrorCode})", cancellationToken);
        }

        if (!job.IsTerminal)
        {
            return polls.DeadlinePassed(run)
                ? await FailAsync(run.Id, $"deadline passed: the backup job was still {job.Status} at {run.Deadline:o}", cancellationToken)
                : await PollAgainAsync(run.Id, poll.Attempt, cancellationToken);
        }

        if (job.State != GesJobState.Success)
        {
            return await FailAsync(run.Id, $"the backup job ended {job.Status}: {job.FailReason ?? "no reason given"}", cancellationToken);
        }

        var backup = await FindBackupAsync(run, cancellationToken);
        return backup is null
            ? await FailAsync(run.Id, run.BackupId is null
                ? "the job succeeded but no manual backup started by this run is listed"
                : $"the backup {run.BackupId} is not listed", cancellationToken)
            : await CopyOrFollowAsync(run, backup, poll.Attempt, cancellationToken);
    }

    /// <summary>The backup the run's job made: the one GES named when it started, else the newest manual one started since.</summary>
    private async Task<GesBackup?> FindBackupAsync(RunRecord run, CancellationToken cancellationToken)
    {
        var backups = await ges.ListAllBackupsAsync(run.GraphId, cancellationToken);
        var since = (run.FirstClaimAt ?? run.SubmittedAt ?? run.CreatedAt) - options.Value.ClockSkewAllowance;
        return run.BackupId is { } known
            ? backups.FirstOrDefault(b => b.Id == known)
            : backups.Where(b => b.BackupMethod == "manual" && b.Status == "success" && b.StartedAt >= since)
                .OrderByDescending(b => b.StartedAt)
                .FirstOrDefault();
    }

    /// <summary>
    /// One copy per GES backup: the run that claims it lists the files and sends one copy per file (record
    /// first, then send, then count this poll: a delivery that dies half-way is redone whole); runs that adopted
    /// the same backup (duplicate requests, a schedule and a backup-now at once) follow the one that copies it.
    /// </summary>
    private async Task<HandlerResult> CopyOrFollowAsync(RunRecord run, GesBackup backup, int attempt, CancellationToken cancellationToken)
    {
        // Names from GES are data: one that cannot name a folder or a claim never reaches storage.
        if (!CopyPaths.IsSafeSegment(backup.Id))
        {
            return await FailAsync(run.Id, $"GES reported backup id '{CopyPaths.Printable(backup.Id)}', which cannot name a folder in the destination", cancellationToken);
        }

        var info = new RunBackupInfo(backup.Id, backup.Name, backup.BackupMethod, backup.Status, backup.Size,
            backup.StartedAt, backup.EndedAt, backup.Duration, backup.DataStoreVersion, backup.Arch);
        var owner = await Runs.ClaimCopyAsync(backup.Id, run.Id, cancellationToken);
        if (owner != run.Id)
        {
            var (_, following) = await polls.RecordAsync(run.Id, attempt, r =>
            {
                r.RecordBackup(info, backup.GraphName);
                r.Follow(owner, time.GetUtcNow());
            }, cancellationToken);
            // Both records say so: this one follows, the one that copies lists it among the runs that joined it.
            try
            {
                await Runs.UpdateAsync(owner, r => r.Joined(run.Id, time.GetUtcNow()), cancellationToken);
            }
            catch (RunNotFoundException)
            {
                // The copying run's record is gone (retention): this one still follows what it left.
            }
            Log.Following(logger, run.Id, backup.Id, owner);
            return following ? await PollAgainAsync(run.Id, attempt, cancellationToken) : HandlerResult.Done;
        }

        var files = await ges.GetDownloadLinksAsync(run.GraphId, backup.Id, cancellationToken);
        if (files.Files.FirstOrDefault(f => !CopyPaths.IsSafeSegment(f.Name) || f.Name == CopyBackupFileHandler.ManifestName) is { } unsafeName)
        {
            return await FailAsync(run.Id, $"GES listed a file named '{CopyPaths.Printable(unsafeName.Name)}' in backup {backup.Id}, which cannot name a file in the destination",
                cancellationToken);
        }

        var (stored, current) = await polls.RecordAsync(run.Id, attempt, r =>
        {
            r.RecordBackup(info, backup.GraphName);
            r.StartCopying(files.Files.Select(f => RunFile.Listed(f.Name, f.Size)), time.GetUtcNow());
        }, cancellationToken);
        if (!current)
        {
            return HandlerResult.Done;
        }

        if (stored.Files.Count == 0)
        {
            return await FailAsync(run.Id, "the backup lists no files", cancellationToken);
        }

        Log.BackupReady(logger, run.Id, backup.Id, stored.Files.Count);
        foreach (var file in stored.Files.Where(f => !f.IsEnded))
        {
            await queues.SendCopyAsync(new CopyBackupFileMessage(MessageParser.CurrentVersion, run.Id, file.Name, null), cancellationToken);
        }

        await polls.CountAsync(run.Id, attempt, null, cancellationToken);
        return HandlerResult.Done;
    }

    /// <summary>A following run looks at the run that copies its backup: when that one ends, this one ends the same way, with its files.</summary>
    private async Task<HandlerResult> FollowAsync(RunRecord run, string leaderId, int attempt, CancellationToken cancellationToken)
    {
        var leader = await Runs.GetAsync(leaderId, cancellationToken);
        if (leader is null)
        {
            return await FailAsync(run.Id, $"the run {leaderId} that copies backup {run.BackupId} no longer exists", cancellationToken);
        }

        if (!leader.IsFinished)
        {
            return polls.DeadlinePassed(run)
                ? await FailAsync(run.Id, $"deadline passed: run {leaderId}, which copies backup {run.BackupId}, had not finished at {run.Deadline:o}", cancellationToken)
                : await PollAgainAsync(run.Id, attempt, cancellationToken);
        }

        await Runs.UpdateAsync(run.Id, r =>
        {
            if (r.IsFinished)
            {
                return false;
            }

            r.EndAs(leader, time.GetUtcNow());
            return true;
        }, cancellationToken);
        Log.Followed(logger, run.Id, leaderId, leader.Status);
        return HandlerResult.Done;
    }

    private Task<HandlerResult> PollAgainAsync(string runId, int attempt, CancellationToken cancellationToken) =>
        polls.AgainAsync(runId, attempt, next => queues.SendPollAsync(new PollBackupJobMessage(MessageParser.CurrentVersion, runId, next),
            options.Value.PollDelay(next), cancellationToken), cancellationToken);

    private async Task<HandlerResult> FailAsync(string runId, string reason, CancellationToken cancellationToken)
    {
        Log.RunFailed(logger, runId, reason);
        await Runs.FailAsync(runId, time.GetUtcNow(), RunStep.BackingUp, reason, cancellationToken);
        return HandlerResult.Done;
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
