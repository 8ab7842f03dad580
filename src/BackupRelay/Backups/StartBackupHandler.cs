using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Backups;

/// <summary>
/// Creates the run (a duplicate delivery finds it and stops), starts the GES backup — or adopts the
/// one already running — and enqueues the first poll.
/// </summary>
public sealed partial class StartBackupHandler(
    RunStore runs,
    GesClient ges,
    WorkQueues queues,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<StartBackupHandler> logger) : IQueueFunction
{
    /// <summary>How long a claim to call add-backup holds off duplicate messages.</summary>
    public static readonly TimeSpan ClaimLease = TimeSpan.FromMinutes(10);

    public string Name => FunctionNames.StartBackup;
    public string Queue => QueueNames.StartBackup;

    public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        if (!MessageParser.TryParse(message, BackupRelayJson.Default.StartBackupMessage, out var start, out var reason))
        {
            return HandlerResult.Park(reason);
        }

        if (start!.V != MessageParser.CurrentVersion || !HuaweiCloudIds.IsValidId(start.RunId) || !HuaweiCloudIds.IsValidId(start.GraphId))
        {
            return HandlerResult.Park($"unsupported message: version {start.V}, run id and graph id must be path-safe ids");
        }

        var settings = options.Value;
        var now = time.GetUtcNow();
        var graphOptions = settings.Find(start.GraphId);
        var (run, created) = await runs.CreateAsync(new RunRecord
        {
            Id = start.RunId,
            GraphId = start.GraphId,
            Trigger = start.Trigger,
            ScheduledAt = start.ScheduledAt,
            CreatedAt = now,
            UpdatedAt = now,
            Deadline = now + (graphOptions?.JobDeadline ?? settings.JobDeadline),
        }, cancellationToken);
        Telemetry.BackupRelayTelemetry.TagRun(run);

        if (run.IsFinished || run.JobId is not null)
        {
            if (!created && run.JobId is not null && !run.IsFinished && run.Files.Count == 0)
            {
                // The earlier delivery may have died before its first poll: one more is harmless (polls are numbered).
                await queues.SendPollAsync(new PollBackupJobMessage(MessageParser.CurrentVersion, run.Id, run.PollCount), settings.PollInitialDelay, cancellationToken);
            }

            Log.Duplicate(logger, run.Id);
            return HandlerResult.Done;
        }

        if (graphOptions is null)
        {
            await FailAsync(run.Id, RunSteps.Starting, $"graph {start.GraphId} is not configured (Backup__Graphs)", cancellationToken);
            return HandlerResult.Done;
        }

        GesGraph graph;
        try
        {
            graph = await ges.GetGraphAsync(start.GraphId, cancellationToken);
        }
        catch (HuaweiCloudException ex) when (ex.Kind is HuaweiCloudErrorKind.NotFound or HuaweiCloudErrorKind.Invalid)
        {
            await FailAsync(run.Id, RunSteps.Starting, $"graph {start.GraphId} cannot be backed up: {ex.ErrorCode} {ex.ErrorMessage}", cancellationToken);
            return HandlerResult.Done;
        }

        // Claim the submission: one message at a time may call add-backup for this run. A duplicate
        // message stands aside while the claim is fresh; the claimant's own redelivery (same nonce)
        // or anyone after the claim went stale takes over, adopting what the earlier attempt started.
        var nonce = start.Nonce ?? Guid.NewGuid().ToString("N");
        var claimedAt = time.GetUtcNow();
        DateTimeOffset? previousSubmit = null;
        var claimed = await runs.UpdateAsync(run.Id, r =>
        {
            if (!r.TryClaimSubmission(nonce, claimedAt, ClaimLease, out var previous))
            {
                return false;
            }

            previousSubmit = previous;
            r.GraphName = graph.Name;
            r.Status = RunStatus.Running;
            r.Step = RunSteps.Starting;
            return true;
        }, cancellationToken);
        if (claimed.IsFinished || claimed.JobId is not null || claimed.SubmitClaim != nonce)
        {
            Log.Duplicate(logger, run.Id);
            return HandlerResult.Done;
        }

        var adopted = previousSubmit is null ? null : await FindRunningBackupAsync(start.GraphId, graph.Name, previousSubmit.Value, cancellationToken);
        if (adopted is null && graph.Status is not ("200" or "903"))
        {
            await FailAsync(run.Id, RunSteps.Starting, $"graph {graph.Name ?? start.GraphId} is not running (status {graph.Status})", cancellationToken);
            return HandlerResult.Done;
        }

        if (adopted is null)
        {
            try
            {
                var added = await ges.AddBackupAsync(start.GraphId, cancellationToken);
                adopted = (added.JobId, added.BackupId);
                Log.Started(logger, run.Id, start.GraphId, added.JobId);
            }
            catch (HuaweiCloudException ex) when (ex.Kind == HuaweiCloudErrorKind.Conflict)
            {
                adopted = await FindRunningBackupAsync(start.GraphId, graph.Name, DateTimeOffset.MinValue, cancellationToken);
                if (adopted is null)
                {
                    return HandlerResult.Retry("GES reports a backup running (GES.7002) but none is listed yet");
                }

                Log.Adopted(logger, run.Id, start.GraphId, adopted.Value.JobId);
            }
            catch (HuaweiCloudException ex) when (ex.Kind is HuaweiCloudErrorKind.NotFound or HuaweiCloudErrorKind.Invalid)
            {
                await FailAsync(run.Id, RunSteps.Starting, $"GES refused the backup: {ex.ErrorCode} {ex.ErrorMessage}", cancellationToken);
                return HandlerResult.Done;
            }
        }
        else
        {
            Log.Adopted(logger, run.Id, start.GraphId, adopted.Value.JobId);
        }

        var (jobId, backupId) = adopted.Value;
        var stored = await runs.UpdateAsync(run.Id, r =>
        {
            if (r.JobId is not null)
            {
                return false;
            }

            r.JobId = jobId;
            r.BackupId = backupId;
            r.GraphName ??= graph.Name;
            r.SubmittedAt ??= time.GetUtcNow();
            r.Status = RunStatus.Running;
            r.Step = RunSteps.BackingUp;
            r.UpdatedAt = time.GetUtcNow();
            return true;
        }, cancellationToken);
        await queues.SendPollAsync(new PollBackupJobMessage(MessageParser.CurrentVersion, stored.Id, stored.PollCount), settings.PollInitialDelay, cancellationToken);
        return HandlerResult.Done;
    }

    /// <summary>
    /// The backup job this run may already own. After GES.7002 (<paramref name="since"/> = MinValue): the one
    /// running now. After a crash: one submitted since this run's earlier attempt, finished or not.
    /// </summary>
    private async Task<(string JobId, string? BackupId)?> FindRunningBackupAsync(string graphId, string? graphName, DateTimeOffset since,
        CancellationToken cancellationToken)
    {
        if (graphName is null)
        {
            return null;
        }

        var anyTime = since == DateTimeOffset.MinValue;
        var earliest = anyTime ? DateTimeOffset.MinValue : since - options.Value.ClockSkewAllowance;
        var backups = await ges.ListAllBackupsAsync(graphId, cancellationToken);
        var backup = backups
            .Where(b => anyTime ? b.Status == "backing_up" : b.BackupMethod == "manual" && b.Status != "failed" && b.StartedAt >= earliest)
            .OrderByDescending(b => b.StartedAt)
            .FirstOrDefault();
        if (backup is null)
        {
            return null;
        }

        var jobs = await ges.ListJobsAsync(new GesJobQuery(GraphName: graphName), 0, 100, cancellationToken);
        var job = jobs.JobList
            .Where(j => j.JobType?.Contains("Backup", StringComparison.OrdinalIgnoreCase) ?? true)
            .Where(j => anyTime ? !j.IsTerminal : j.BeganAt is null || j.BeganAt >= earliest)
            .OrderByDescending(j => j.BeganAt ?? DateTimeOffset.MaxValue)
            .FirstOrDefault();
        return job is null ? null : (job.JobId, backup.Id);
    }

    private Task FailAsync(string runId, string step, string reason, CancellationToken cancellationToken)
    {
        Log.RunFailed(logger, runId, reason);
        return runs.FailAsync(runId, time.GetUtcNow(), step, reason, cancellationToken);
    }

    private static partial class Log
    {
        [LoggerMessage(41, LogLevel.Information, "Run {RunId}: backup of graph {GraphId} started, job {JobId}")]
        public static partial void Started(ILogger logger, string runId, string graphId, string jobId);

        [LoggerMessage(42, LogLevel.Warning, "Run {RunId}: a backup of graph {GraphId} was already running; adopted job {JobId}")]
        public static partial void Adopted(ILogger logger, string runId, string graphId, string jobId);

        [LoggerMessage(43, LogLevel.Information, "Run {RunId} already started: duplicate delivery ignored")]
        public static partial void Duplicate(ILogger logger, string runId);

        [LoggerMessage(44, LogLevel.Error, "Run {RunId} failed: {Reason}")]
        public static partial void RunFailed(ILogger logger, string runId, string reason);
    }
}
