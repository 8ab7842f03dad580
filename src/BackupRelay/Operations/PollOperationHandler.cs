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
/// the last step of a restore from a copy), with the same numbered polls as backup jobs, every
/// <see cref="BackupOptions.OperationPollInterval"/> (not backing off: someone is waiting on a restore).
/// </summary>
public sealed partial class PollOperationHandler(
    IRunRecords runs,
    NumberedPolls polls,
    GesClient ges,
    CseClient cse,
    IWorkSender queues,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<PollOperationHandler> logger) : RunStepFunction<PollOperationMessage>(runs, BackupRelayJson.Default.PollOperationMessage)
{
    public override string Queue => QueueNames.PollOperation;

    protected override async Task<HandlerResult> HandleAsync(PollOperationMessage poll, RunRecord run, long dequeueCount, CancellationToken cancellationToken)
    {
        if (NumberedPolls.Admit(run!, poll!.Attempt) is { } notNow)
        {
            return notNow;
        }

        var (finished, failure, detail) = run!.Kind switch
        {
            RunKind.EngineRestore => await RestoreStateAsync(run, cancellationToken),
            RunKind.Import or RunKind.RestoreFromCopy or RunKind.RestoreDrill => await ImportStateAsync(run, cancellationToken),
            _ => (true, $"run kind {run.Kind.Name()} has no operation to poll", null),
        };

        if (!finished && polls.DeadlinePassed(run))
        {
            (finished, failure) = (true, $"deadline passed: still running at {run.Deadline:o}");
        }
        else if (!finished)
        {
            await queues.SendOperationPollAsync(poll with { Attempt = poll.Attempt + 1 }, options.Value.OperationPollInterval, cancellationToken);
        }

        // Count this poll, and with it what the operation said and, when it ended, how.
        await polls.CountAsync(run.Id, poll.Attempt, r => Record(r, finished, failure, detail), cancellationToken);
        if (finished)
        {
            Log.Finished(logger, run.Id, run.Kind.Name(), failure ?? "succeeded");
        }

        return HandlerResult.Done;
    }

    /// <summary>
    /// What one look at the operation found, on the record: the engine restore's status, the backup the import
    /// made (the imported backup for a restore from a copy), and the end.
    /// </summary>
    private void Record(RunRecord run, bool finished, string? failure, string? detail)
    {
        var now = time.GetUtcNow();
        run.RecordOperationDetail(detail, now);
        if (finished && failure is null)
        {
            run.Succeed(now);
        }
        else if (finished)
        {
            run.Fail(now, run.Kind == RunKind.EngineRestore ? RunStep.Restoring : RunStep.Importing, failure!);
        }
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
