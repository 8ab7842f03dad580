using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud.Cse;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Operations;

/// <summary>
/// Follows a webhook-started operation to its end: a CSE restore (engine job) or a GES import (job, also
/// the last step of a restore from a copy),
/// with the same numbered, backing-off polls as backup jobs.
/// </summary>
public sealed partial class PollOperationHandler(
    RunStore runs,
    GesClient ges,
    CseClient cse,
    WorkQueues queues,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<PollOperationHandler> logger) : IQueueFunction
{
    public string Name => FunctionNames.PollOperation;
    public string Queue => QueueNames.PollOperation;

    public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        var (poll, run, stop) = await MessageParser.ReadRunMessageAsync(message, BackupRelayJson.Default.PollOperationMessage,
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

        var (finished, failure, detail) = run.Kind switch
        {
            "restore" => await RestoreStateAsync(run, cancellationToken),
            "import" or Restores.UploadToObsHandler.Kind or RunIndexEntry.DrillKind => await ImportStateAsync(run, cancellationToken),
            _ => (true, $"run kind {run.Kind} is not followed by {Name}", null),
        };

        var now = time.GetUtcNow();
        if (!finished)
        {
            if (run.Deadline is { } deadline && now > deadline)
            {
                finished = true;
                failure = $"deadline passed: still running at {deadline:o}";
            }
            else
            {
                await queues.SendOperationPollAsync(poll with { Attempt = poll.Attempt + 1 }, options.Value.PollDelay(poll.Attempt + 1), cancellationToken);
            }
        }

        await runs.UpdateAsync(run.Id, r =>
        {
            if (r.IsFinished || r.PollCount != poll.Attempt)
            {
                return false;
            }

            r.PollCount++;
            r.UpdatedAt = now;
            if (detail is not null && r.Kind == "restore")
            {
                r.RestoreStatus = detail;
            }
            else if (detail is not null && r.Kind is Restores.UploadToObsHandler.Kind or RunIndexEntry.DrillKind)
            {
                r.ImportedBackupId = detail;
            }
            else if (detail is not null)
            {
                r.BackupId = detail;
            }

            if (finished && failure is null)
            {
                r.Status = RunStatus.Succeeded;
                r.Step = RunSteps.Done;
                r.CompletedAt = now;
            }
            else if (finished)
            {
                r.Fail(now, r.Kind == "restore" ? RunSteps.Restoring : RunSteps.Importing, failure!);
            }

            return true;
        }, cancellationToken);
        if (finished)
        {
            Log.Finished(logger, run.Id, run.Kind, failure ?? "succeeded");
        }

        return HandlerResult.Done;
    }

    private async Task<(bool Finished, string? Failure, string? Detail)> RestoreStateAsync(RunRecord run, CancellationToken cancellationToken)
    {
        var job = await cse.GetEngineJobAsync(run.EngineId!, run.JobId!, cancellationToken);
        if (!job.IsTerminal)
        {
            return (false, null, job.Status);
        }

        return job.Status == "Finished"
            ? (true, null, "Success")
            : (true, $"the engine restore ended {job.Status}: {job.Reason ?? "no reason given"}", job.Status);
    }

    private async Task<(bool Finished, string? Failure, string? Detail)> ImportStateAsync(RunRecord run, CancellationToken cancellationToken)
    {
        var job = await ges.GetJobAsync(run.ImportGraphId, run.JobId!, cancellationToken);
        if (!job.IsTerminal)
        {
            return (false, null, null);
        }

        string? imported = null;
        if (job.JobDetail is { ValueKind: System.Text.Json.JsonValueKind.Object } detail && detail.TryGetProperty("backup_id", out var id))
        {
            imported = id.GetString();
        }

        return job.State == GesJobState.Success
            ? (true, null, imported)
            : (true, $"the import job ended {job.Status}: {job.FailReason ?? "no reason given"}", null);
    }

    private static partial class Log
    {
        [LoggerMessage(85, LogLevel.Information, "Run {RunId} ({Kind}) finished: {Outcome}")]
        public static partial void Finished(ILogger logger, string runId, string kind, string outcome);
    }
}
