using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Restores;

/// <summary>
/// A restore from a copy, after the webhook checked the copy: uploads one slice of one file to OBS
/// (re-enqueuing its continuation until the file is in OBS and verified). The delivery that finishes
/// the last file lists the OBS path once more, then asks GES to import it — once per run, even across
/// crashes and duplicate deliveries — and hands the import job to <c>PollOperation</c>.
/// </summary>
public sealed partial class UploadToObsHandler(
    RunStore runs,
    ObsUploader uploader,
    ObsClient obs,
    GesClient ges,
    WorkQueues queues,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<UploadToObsHandler> logger,
    Telemetry.BackupRelayMetrics metrics) : IQueueFunction
{
    public const string Kind = "restore-from-copy";

    /// <summary>How long a claim to start the import holds off other deliveries (the claimant's own redelivery takes over at once).</summary>
    public static readonly TimeSpan ClaimLease = TimeSpan.FromMinutes(2);

    public string Name => FunctionNames.UploadToObs;
    public string Queue => QueueNames.UploadToObs;

    public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        var (upload, run, stop) = await MessageParser.ReadRunMessageAsync(message, BackupRelayJson.Default.RestoreUploadMessage,
            m => m.V, m => m.RunId, runs, cancellationToken);
        if (stop is not null)
        {
            return stop;
        }

        if (run!.Kind is not (Kind or RunIndexEntry.DrillKind) || !HuaweiCloudIds.IsValidId(upload!.File) || upload.Offset < 0)
        {
            return HandlerResult.Park($"unsupported message: run {run.Id} is a {run.Kind} run, or the file or offset is not valid");
        }

        System.Diagnostics.Activity.Current?.SetTag(Telemetry.BackupRelayTelemetry.File, upload.File);
        if (run.IsFinished)
        {
            return HandlerResult.Done;
        }

        var file = run.Files.FirstOrDefault(f => f.Name == upload.File);
        if (file is null)
        {
            return HandlerResult.Park($"run {run.Id} has no file {upload.File}");
        }

        if (file.Status == RunFileStatus.Completed)
        {
            return await ImportWhenUploadedAsync(run.Id, upload, cancellationToken);
        }

        if (file.Status == RunFileStatus.Failed)
        {
            return HandlerResult.Done;
        }

        var (bucket, prefix) = SplitObsPath(run.ImportPath!);
        var startedAt = time.GetUtcNow();
        UploadResult result;
        try
        {
            result = await uploader.UploadAsync(new UploadRequest(run.Id, file.Name, $"{run.SourceGraph}/{run.BackupId}/{file.Name}", bucket, prefix + file.Name,
                file.Size ?? 0, file.Md5!, file.Sha256!, upload.Offset,
                new Dictionary<string, string> { ["backuprelay-run"] = run.Id, ["backuprelay-backup"] = run.BackupId! }), cancellationToken);
        }
        catch (ObsException ex) when (!ex.Transient && !ex.IsNoSuchUpload && ex.Code is not "IncompleteUpload")
        {
            await FailAsync(run.Id, file.Name, $"OBS refused the upload: {ex.Message}", cancellationToken);
            return HandlerResult.Done;
        }

        switch (result.Outcome)
        {
            case UploadOutcome.Continue:
                var counted = 0L;
                await runs.UpdateAsync(run.Id, r =>
                {
                    var f = r.FileNamed(file.Name);
                    if (f.Status != RunFileStatus.Pending && f.Status != RunFileStatus.Copying)
                    {
                        return false;
                    }

                    counted = Math.Max(0, result.Offset - f.BytesCopied);
                    f.Status = RunFileStatus.Copying;
                    f.BytesCopied = Math.Max(f.BytesCopied, result.Offset);
                    f.Slices++;
                    f.StartedAt ??= startedAt;
                    r.UpdatedAt = time.GetUtcNow();
                    return true;
                }, cancellationToken);
                if (counted > 0)
                {
                    metrics.SliceCopied(run.GraphId, counted, time.GetUtcNow() - startedAt);
                }

                await queues.SendUploadAsync(upload with { Offset = result.Offset, Nonce = Guid.NewGuid().ToString("N") }, null, cancellationToken);
                return HandlerResult.Done;

            case UploadOutcome.Completed:
                if (run.Kind == RunIndexEntry.DrillKind && await ReadBackProblemAsync(bucket, prefix + file.Name, file, cancellationToken) is { } differs)
                {
                    await FailAsync(run.Id, file.Name, differs, cancellationToken, step: RunSteps.Verifying);
                    return HandlerResult.Done;
                }

                var uploaded = 0L;
                await runs.UpdateAsync(run.Id, r =>
                {
                    var f = r.FileNamed(file.Name);
                    if (f.Status == RunFileStatus.Completed)
                    {
                        return false;
                    }

                    uploaded = Math.Max(0, (f.Size ?? result.Offset) - f.BytesCopied);

                    f.Status = RunFileStatus.Completed;
                    f.BytesCopied = f.Size ?? result.Offset;
                    f.Slices++;
                    f.StartedAt ??= startedAt;
                    f.CompletedAt = time.GetUtcNow();
                    f.Verification ??= "manifest";
                    f.Error = null;
                    r.UpdatedAt = time.GetUtcNow();
                    return true;
                }, cancellationToken);
                if (uploaded > 0)
                {
                    metrics.SliceCopied(run.GraphId, uploaded, time.GetUtcNow() - startedAt);
                }

                return await ImportWhenUploadedAsync(run.Id, upload, cancellationToken);

            default:
                await FailAsync(run.Id, file.Name, result.FailureReason ?? "upload failed", cancellationToken);
                return HandlerResult.Done;
        }
    }

    /// <summary>When every file is in OBS: check the path, claim the import, start it once, follow it. Safe to repeat.</summary>
    private async Task<HandlerResult> ImportWhenUploadedAsync(string runId, RestoreUploadMessage upload, CancellationToken cancellationToken)
    {
        var run = await runs.GetAsync(runId, cancellationToken);
        if (run is null || run.IsFinished || run.Files.Any(f => f.Status != RunFileStatus.Completed))
        {
            return HandlerResult.Done;
        }

        if (run.JobId is not null)
        {
            // The import was started; an earlier delivery may have died before its first poll (polls are numbered).
            await queues.SendOperationPollAsync(new PollOperationMessage(MessageParser.CurrentVersion, run.Id, run.PollCount), options.Value.PollInitialDelay, cancellationToken);
            return HandlerResult.Done;
        }

        var (bucket, prefix) = SplitObsPath(run.ImportPath!);
        var listed = (await obs.ListAsync(bucket, prefix, cancellationToken)).ToDictionary(o => o.Key, StringComparer.Ordinal);
        foreach (var f in run.Files)
        {
            if (!listed.TryGetValue(prefix + f.Name, out var found) || found.Length != f.Size)
            {
                await runs.FailAsync(run.Id, time.GetUtcNow(), RunSteps.Importing,
                    $"{f.Name}: OBS lists {(found is null ? "no such object" : $"{found.Length} bytes")} under {run.ImportPath} just before the import; the copy has {f.Size}",
                    cancellationToken);
                return HandlerResult.Done;
            }
        }

        var nonce = upload.Nonce ?? $"{upload.File}@{upload.Offset}";
        var claimedAt = time.GetUtcNow();
        DateTimeOffset? previousClaim = null;
        var claimed = await runs.UpdateAsync(run.Id, r =>
        {
            if (!r.TryClaimSubmission(nonce, claimedAt, ClaimLease, out var previous))
            {
                return false;
            }

            previousClaim = previous;
            r.Step = RunSteps.Importing;
            return true;
        }, cancellationToken);
        if (claimed.IsFinished || claimed.JobId is not null)
        {
            return HandlerResult.Done;
        }

        if (claimed.SubmitClaim != nonce)
        {
            // Another delivery holds the claim; if it dies, this comes back after its lease.
            return HandlerResult.Retry($"another delivery is starting the import of run {run.Id}");
        }

        string? jobId = null;
        GesGraph graph;
        try
        {
            graph = await ges.GetGraphAsync(run.ImportGraphId, cancellationToken);
            if (previousClaim is not null)
            {
                jobId = await FindImportJobAsync(graph.Name, run.ImportPath!, previousClaim.Value, cancellationToken);
            }

            if (jobId is null)
            {
                jobId = (await ges.ImportBackupAsync(run.ImportGraphId, run.ImportPath!, cancellationToken)).JobId;
                Log.ImportStarted(logger, run.Id, run.ImportGraphId, jobId);
            }
            else
            {
                Log.ImportAdopted(logger, run.Id, jobId);
            }
        }
        catch (HuaweiCloudException ex) when (ex.Kind == HuaweiCloudErrorKind.Conflict || ex.ErrorCode is "GES.7001" or "GES.7003")
        {
            // Busy for now (backing up, importing, stopping — "not running" in a passing state): ask again later.
            return HandlerResult.Retry($"graph {run.ImportGraphId} is busy: {ex.ErrorCode} {ex.ErrorMessage}");
        }
        catch (HuaweiCloudException ex) when (ex.Kind is HuaweiCloudErrorKind.NotFound or HuaweiCloudErrorKind.Invalid)
        {
            await runs.FailAsync(run.Id, time.GetUtcNow(), RunSteps.Importing, $"GES refused the import: {ex.ErrorCode} {ex.ErrorMessage}", cancellationToken);
            return HandlerResult.Done;
        }

        var now = time.GetUtcNow();
        var stored = await runs.UpdateAsync(run.Id, r =>
        {
            if (r.JobId is not null || r.IsFinished)
            {
                return false;
            }

            r.JobId = jobId;
            r.GraphName ??= graph.Name;
            r.Step = RunSteps.Importing;
            r.Deadline = now + options.Value.JobDeadline;
            r.UpdatedAt = now;
            return true;
        }, cancellationToken);
        await queues.SendOperationPollAsync(new PollOperationMessage(MessageParser.CurrentVersion, stored.Id, stored.PollCount), options.Value.PollInitialDelay, cancellationToken);
        return HandlerResult.Done;
    }

    /// <summary>An import of this path GES started since an earlier claim (whose delivery died before recording the job).</summary>
    private async Task<string?> FindImportJobAsync(string? graphName, string importPath, DateTimeOffset since, CancellationToken cancellationToken)
    {
        if (graphName is null)
        {
            return null;
        }

        var earliest = since - options.Value.ClockSkewAllowance;
        var jobs = await ges.ListJobsAsync(new GesJobQuery(GraphName: graphName), 0, 100, cancellationToken);
        return jobs.JobList
            .Where(j => j.JobType?.Contains("Import", StringComparison.OrdinalIgnoreCase) ?? false)
            .Where(j => j.BeganAt is null || j.BeganAt >= earliest)
            .Where(j => j.JobDetail is not { ValueKind: System.Text.Json.JsonValueKind.Object } detail
                || !detail.TryGetProperty("import_path", out var path) || path.GetString() == importPath)
            .OrderByDescending(j => j.BeganAt ?? DateTimeOffset.MaxValue)
            .Select(j => j.JobId)
            .FirstOrDefault();
    }

    /// <summary>
    /// A drill proves the copy comes back byte-exact: the object is read back from OBS and its length, MD5 and
    /// SHA-256 compared with what was recorded when the copy was made. Null when they match, else why not.
    /// </summary>
    private async Task<string?> ReadBackProblemAsync(string bucket, string key, RunFile file, CancellationToken cancellationToken)
    {
        var served = await obs.ReadBackAsync(bucket, key, cancellationToken);
        if (served is null)
        {
            return "OBS has no such object when it is read back after its upload";
        }

        return served.Length == file.Size && string.Equals(served.Md5Hex, file.Md5, StringComparison.OrdinalIgnoreCase)
            && string.Equals(served.Sha256Hex, file.Sha256, StringComparison.OrdinalIgnoreCase)
            ? null
            : $"read back from OBS it is {served.Length} bytes, SHA-256 {served.Sha256Hex}; the copy recorded {file.Size} bytes, SHA-256 {file.Sha256}";
    }

    private async Task FailAsync(string runId, string file, string reason, CancellationToken cancellationToken, string step = RunSteps.Uploading)
    {
        Log.FileFailed(logger, runId, file, reason);
        await runs.UpdateAsync(runId, r =>
        {
            if (r.IsFinished)
            {
                return false;
            }

            var now = time.GetUtcNow();
            var f = r.FileNamed(file);
            f.Status = RunFileStatus.Failed;
            f.Error = reason;
            r.Fail(now, step, $"{file}: {reason}");
            r.UpdatedAt = now;
            return true;
        }, cancellationToken);
    }

    /// <summary><c>bucket/prefix/</c> → (bucket, <c>prefix/</c>).</summary>
    public static (string Bucket, string Prefix) SplitObsPath(string path)
    {
        var slash = path.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (path, "") : (path[..slash], path[(slash + 1)..]);
    }

    private static partial class Log
    {
        [LoggerMessage(95, LogLevel.Information, "Run {RunId}: every file is in OBS; GES import into graph {GraphId} started, job {JobId}")]
        public static partial void ImportStarted(ILogger logger, string runId, string graphId, string jobId);

        [LoggerMessage(96, LogLevel.Warning, "Run {RunId}: an earlier delivery had started the import; adopted job {JobId}")]
        public static partial void ImportAdopted(ILogger logger, string runId, string jobId);

        [LoggerMessage(97, LogLevel.Error, "Run {RunId}: {File} could not be restored to OBS: {Reason}")]
        public static partial void FileFailed(ILogger logger, string runId, string file, string reason);
    }
}
