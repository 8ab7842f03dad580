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
    IRunRecords runs,
    SubmitOnce submitOnce,
    GesClient ges,
    IWorkSender queues,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<StartBackupHandler> logger) : IQueueFunction
{
    /// <summary>How long a claim to call add-backup holds off duplicate messages.</summary>
    public static readonly TimeSpan ClaimLease = TimeSpan.FromMinutes(10);

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

        var graphOptions = options.Value.Find(start.GraphId);
        var run = await CreateRunAsync(start, graphOptions, cancellationToken);
        if (run.IsFinished || run.JobId is not null)
        {
            await SubmitOnce.ResendFirstPollAsync(run, r => SendFirstPollAsync(r, cancellationToken));
            Log.Duplicate(logger, run.Id);
            return HandlerResult.Done;
        }

        if (graphOptions is null)
        {
            return await FailAsync(run.Id, $"graph {start.GraphId} is not configured (Backup__Graphs)", cancellationToken);
        }

        GesGraph graph;
        try
        {
            graph = await ges.GetGraphAsync(start.GraphId, cancellationToken);
        }
        catch (HuaweiCloudException ex) when (ex.Kind is HuaweiCloudErrorKind.NotFound or HuaweiCloudErrorKind.Invalid)
        {
            return await FailAsync(run.Id, $"graph {start.GraphId} cannot be backed up: {ex.ErrorCode} {ex.ErrorMessage}", cancellationToken);
        }

        return await submitOnce.SubmitAsync(new JobSubmission(run.Id, start.Nonce ?? Guid.NewGuid().ToString("N"), ClaimLease,
            RunStep.Starting, RunStep.BackingUp,
            (previousClaim, ct) => StartJobAsync(run.Id, start.GraphId, graph, previousClaim, ct),
            SendFirstPollAsync,
            OnClaim: r => r.NameGraph(graph.Name),
            OnDuplicate: () => Log.Duplicate(logger, run.Id)), cancellationToken);
    }

    /// <summary>The run's record: created by the first delivery, found by every other.</summary>
    private async Task<RunRecord> CreateRunAsync(StartBackupMessage start, GraphOptions? graph, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var (run, _) = await runs.CreateAsync(RunRecord.NewBackup(start.RunId, start.GraphId, start.Trigger, start.ScheduledAt, now, graph?.JobDeadline ?? options.Value.JobDeadline), cancellationToken);
        Telemetry.BackupRelayTelemetry.TagRun(run);
        return run;
    }

    /// <summary>
    /// Adopts the backup an earlier claim of this run started (after a crash), else calls add-backup; GES.7002
    /// (a backup already running) adopts the running one.
    /// </summary>
    private async Task<JobStart> StartJobAsync(string runId, string graphId, GesGraph graph, DateTimeOffset? previousClaim, CancellationToken cancellationToken)
    {
        if (previousClaim is { } since && await FindRunningBackupAsync(graphId, graph.Name, since, cancellationToken) is { } earlier)
        {
            Log.Adopted(logger, runId, graphId, earlier.JobId);
            return earlier;
        }

        if (graph.Status is not ("200" or "903"))
        {
            return Refused(runId, $"graph {graph.Name ?? graphId} is not running (status {graph.Status})");
        }

        var attemptAt = time.GetUtcNow();
        try
        {
            var added = await ges.AddBackupAsync(graphId, cancellationToken);
            Log.Started(logger, runId, graphId, added.JobId);
            return new JobStart.Started(added.JobId, added.BackupId);
        }
        catch (HuaweiCloudException ex) when (ex.Kind == HuaweiCloudErrorKind.Conflict)
        {
            if (await FindRunningBackupAsync(graphId, graph.Name, DateTimeOffset.MinValue, cancellationToken) is not { } running)
            {
                return new JobStart.Busy("GES reports a backup running (GES.7002) but none is listed yet");
            }

            Log.Adopted(logger, runId, graphId, running.JobId);
            return running;
        }
        catch (HuaweiCloudException ex) when (ex.Kind is HuaweiCloudErrorKind.NotFound or HuaweiCloudErrorKind.Invalid)
        {
            return Refused(runId, $"GES refused the backup: {ex.ErrorCode} {ex.ErrorMessage}");
        }
        catch (HuaweiCloudException ex) when (ex.Kind == HuaweiCloudErrorKind.Transient)
        {
            // No clear answer (a timeout, a dropped connection, a 5xx): GES may have started the backup. The client does not
            // send add-backup twice (a second one starts a second backup once the first has ended), so look for the backup this
            // attempt started and adopt it; none listed yet: the message comes back, and its redelivery looks again first.
            if (await FindRunningBackupAsync(graphId, graph.Name, attemptAt, cancellationToken) is { } started)
            {
                Log.Adopted(logger, runId, graphId, started.JobId);
                return started;
            }

            return new JobStart.Busy($"add-backup got no clear answer ({ex.ErrorCode ?? ex.Message}) and no backup it started is listed yet");
        }
    }

    private JobStart.Refused Refused(string runId, string reason)
    {
        Log.RunFailed(logger, runId, reason);
        return new JobStart.Refused(reason);
    }

    private Task SendFirstPollAsync(RunRecord run, CancellationToken cancellationToken) =>
        queues.SendPollAsync(new PollBackupJobMessage(MessageParser.CurrentVersion, run.Id, run.PollCount), options.Value.PollInitialDelay, cancellationToken);

    /// <summary>
    /// The backup job this run may already own. After GES.7002 (<paramref name="since"/> = MinValue): the one
    /// running now. After a crash: one submitted since this run's earlier attempt, finished or not.
    /// </summary>
    private async Task<JobStart.Started?> FindRunningBackupAsync(string graphId, string? graphName, DateTimeOffset since,
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
        return job is null ? null : new JobStart.Started(job.JobId, backup.Id, Adopted: true);
    }

    private async Task<HandlerResult> FailAsync(string runId, string reason, CancellationToken cancellationToken)
    {
        Log.RunFailed(logger, runId, reason);
        await runs.FailAsync(runId, time.GetUtcNow(), RunStep.Starting, reason, cancellationToken);
        return HandlerResult.Done;
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
