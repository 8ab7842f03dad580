using BackupRelay.Configuration;
using BackupRelay.Copying;
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
    IRunRecords runs,
    SubmitOnce submitOnce,
    ObsUploader uploader,
    ObsReader reader,
    ObsClient obs,
    GesClient ges,
    IWorkSender queues,
    IOptions<BackupOptions> options,
    TimeProvider time,
    ILogger<UploadToObsHandler> logger,
    Telemetry.BackupRelayMetrics metrics) : RunStepFunction<RestoreUploadMessage>(runs, BackupRelayJson.Default.RestoreUploadMessage)
{
    /// <summary>How long a claim to start the import holds off other deliveries (the claimant's own redelivery takes over at once).</summary>
    public static readonly TimeSpan ClaimLease = TimeSpan.FromMinutes(2);

    public override string Queue => QueueNames.UploadToObs;

    protected override async Task<HandlerResult> HandleAsync(RestoreUploadMessage upload, RunRecord run, long dequeueCount, CancellationToken cancellationToken)
    {
        if (run!.Kind is not (RunKind.RestoreFromCopy or RunKind.RestoreDrill) || !HuaweiCloudIds.IsValidId(upload!.File) || upload.Offset < 0)
        {
            return HandlerResult.Park($"unsupported message: run {run.Id} is a {run.Kind.Name()} run, or the file or offset is not valid");
        }

        System.Diagnostics.Activity.Current?.SetTag(Telemetry.BackupRelayTelemetry.File, upload.File);
        var file = run.Files.FirstOrDefault(f => f.Name == upload.File);
        if (run.IsFinished || file is null)
        {
            return file is null && !run.IsFinished ? HandlerResult.Park($"run {run.Id} has no file {upload.File}") : HandlerResult.Done;
        }

        return file.Status switch
        {
            RunFileStatus.Completed => await ImportWhenUploadedAsync(run.Id, upload, cancellationToken),
            RunFileStatus.Failed => HandlerResult.Done,
            _ => await UploadSliceAsync(run, file, upload, cancellationToken),
        };
    }

    /// <summary>Uploads the next slice of <paramref name="file"/>: sends the continuation, or on the last slice checks the file and goes on to the import.</summary>
    private async Task<HandlerResult> UploadSliceAsync(RunRecord run, RunFile file, RestoreUploadMessage upload, CancellationToken cancellationToken)
    {
        var (bucket, prefix) = SplitObsPath(run.ImportPath!);
        var startedAt = time.GetUtcNow();
        if (upload.ReadBack is { } readBackFrom && run.Kind == RunKind.RestoreDrill)
        {
            return await ReadBackSliceAsync(run, file, upload, bucket, prefix + file.Name, readBackFrom, startedAt, cancellationToken);
        }

        UploadResult result;
        try
        {
            result = await uploader.UploadAsync(new UploadRequest(run.Id, file.Name, CopyPaths.File(run.SourceGraph!, run.BackupId!, file.Name), bucket, prefix + file.Name,
                file.Size ?? 0, file.Md5, file.Sha256!, upload.Offset,
                new Dictionary<string, string> { ["backuprelay-run"] = run.Id, ["backuprelay-backup"] = run.BackupId! }), cancellationToken);
        }
        catch (ObsException ex) when (!ex.Transient && !ex.IsNoSuchUpload && ex.Code is not "IncompleteUpload")
        {
            return await FailAsync(run.Id, file.Name, $"OBS refused the upload: {ex.Message}", cancellationToken);
        }

        switch (result.Outcome)
        {
            case UploadOutcome.Continue:
                await RecordFileAsync(run, file.Name, startedAt, f => f.Progress(result.Offset, null, startedAt), cancellationToken);
                await queues.SendUploadAsync(upload with { Offset = result.Offset, Nonce = Guid.NewGuid().ToString("N") }, null, cancellationToken);
                return HandlerResult.Done;

            case UploadOutcome.Completed when run.Kind == RunKind.RestoreDrill:
                return await ReadBackSliceAsync(run, file, upload, bucket, prefix + file.Name, 0, startedAt, cancellationToken);

            case UploadOutcome.Completed:
                return await FileInObsAsync(run, file.Name, result.Offset, upload, startedAt, cancellationToken);

            default:
                return await FailAsync(run.Id, file.Name, result.FailureReason ?? "upload failed", cancellationToken);
        }
    }

    /// <summary>Writes a slice's progress on the file's record; the bytes it adds (none for a redelivery) go to the throughput metric.</summary>
    private async Task RecordFileAsync(RunRecord run, string fileName, DateTimeOffset startedAt, Func<RunFile, long?> change, CancellationToken cancellationToken)
    {
        if (await Runs.UpdateFileAsync(run.Id, fileName, change, time.GetUtcNow(), cancellationToken) is > 0 and var added)
        {
            metrics.SliceCopied(run.GraphId, added, time.GetUtcNow() - startedAt);
        }
    }

    /// <summary>When every file is in OBS: check the path, then start the import once (adopting one an earlier delivery started) and follow it. Safe to repeat.</summary>
    private async Task<HandlerResult> ImportWhenUploadedAsync(string runId, RestoreUploadMessage upload, CancellationToken cancellationToken)
    {
        var run = await Runs.GetAsync(runId, cancellationToken);
        if (run is null || run.IsFinished || run.Files.Any(f => f.Status != RunFileStatus.Completed))
        {
            return HandlerResult.Done;
        }

        if (run.JobId is not null)
        {
            await SubmitOnce.ResendFirstPollAsync(run, r => SendFirstPollAsync(r, cancellationToken));
            return HandlerResult.Done;
        }

        if (await MissingInObsAsync(run, cancellationToken) is { } missing)
        {
            await Runs.FailAsync(run.Id, time.GetUtcNow(), RunStep.Importing, missing, cancellationToken);
            return HandlerResult.Done;
        }

        string? graphName = null;
        return await submitOnce.SubmitAsync(new JobSubmission(run.Id, upload.Nonce ?? $"{upload.File}@{upload.Offset}", ClaimLease,
            RunStep.Importing, RunStep.Importing,
            (previousClaim, ct) => StartImportAsync(run, previousClaim, name => graphName = name, ct),
            SendFirstPollAsync,
            OnJob: r =>
            {
                r.NameGraph(graphName);
                r.ExtendDeadline(time.GetUtcNow() + options.Value.JobDeadline);
            },
            // Another delivery holds the claim; if it dies, this comes back after its lease.
            WhenHeld: HandlerResult.Retry($"another delivery is starting the import of run {run.Id}")), cancellationToken);
    }

    /// <summary>Why the import would not find the copy in OBS (a file missing or of another length), or null.</summary>
    private async Task<string?> MissingInObsAsync(RunRecord run, CancellationToken cancellationToken)
    {
        var (bucket, prefix) = SplitObsPath(run.ImportPath!);
        var listed = (await obs.ListAsync(bucket, prefix, cancellationToken)).ToDictionary(o => o.Key, StringComparer.Ordinal);
        foreach (var f in run.Files)
        {
            if (!listed.TryGetValue(prefix + f.Name, out var found) || found.Length != f.Size)
            {
                return $"{f.Name}: OBS lists {(found is null ? "no such object" : $"{found.Length} bytes")} under {run.ImportPath} just before the import; the copy has {f.Size}";
            }
        }

        return null;
    }

    /// <summary>Adopts the import an earlier claim started (after a crash), else asks GES to import the path; a busy graph is asked again later.</summary>
    private async Task<JobStart> StartImportAsync(RunRecord run, DateTimeOffset? previousClaim, Action<string?> graphNamed, CancellationToken cancellationToken)
    {
        try
        {
            var graph = await ges.GetGraphAsync(run.ImportGraphId, cancellationToken);
            graphNamed(graph.Name);
            if (previousClaim is { } since && await FindImportJobAsync(graph.Name, run.ImportPath!, since, cancellationToken) is { } earlier)
            {
                Log.ImportAdopted(logger, run.Id, earlier);
                return new JobStart.Started(earlier);
            }

            var jobId = (await ges.ImportBackupAsync(run.ImportGraphId, run.ImportPath!, cancellationToken)).JobId;
            Log.ImportStarted(logger, run.Id, run.ImportGraphId, jobId);
            return new JobStart.Started(jobId);
        }
        catch (HuaweiCloudException ex) when (ex.Kind == HuaweiCloudErrorKind.Conflict || ex.ErrorCode is "GES.7001" or "GES.7003")
        {
            // Busy for now (backing up, importing, stopping — "not running" in a passing state): ask again later.
            return new JobStart.Busy($"graph {run.ImportGraphId} is busy: {ex.ErrorCode} {ex.ErrorMessage}");
        }
        catch (HuaweiCloudException ex) when (ex.Kind is HuaweiCloudErrorKind.NotFound or HuaweiCloudErrorKind.Invalid)
        {
            return new JobStart.Refused($"GES refused the import: {ex.ErrorCode} {ex.ErrorMessage}");
        }
    }

    private Task SendFirstPollAsync(RunRecord run, CancellationToken cancellationToken) =>
        queues.SendOperationPollAsync(new PollOperationMessage(MessageParser.CurrentVersion, run.Id, run.PollCount), options.Value.OperationPollInterval, cancellationToken);

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
    /// A drill proves the copy comes back byte-exact: the object is read back from OBS (<see cref="ObsReader"/>, a slice
    /// at a time, the next slice as a message of its own) and its length, MD5 and SHA-256 compared with what was recorded
    /// when the copy was made; then the file counts as uploaded and the import may start.
    /// </summary>
    private async Task<HandlerResult> ReadBackSliceAsync(RunRecord run, RunFile file, RestoreUploadMessage upload, string bucket, string key, long from,
        DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        ReadBackResult result;
        try
        {
            result = await reader.ReadAsync(new ReadBackRequest(run.Id, file.Name, bucket, key, file.Size ?? 0, from), cancellationToken);
        }
        catch (ObsException ex) when (!ex.Transient)
        {
            return await FailAsync(run.Id, file.Name, $"OBS refused the read-back: {ex.Message}", cancellationToken, step: RunStep.Verifying);
        }

        if (result.Problem is { } problem)
        {
            return await FailAsync(run.Id, file.Name, problem, cancellationToken, step: RunStep.Verifying);
        }

        if (result.Served is not { } served)
        {
            await queues.SendUploadAsync(upload with { ReadBack = result.Offset, Nonce = Guid.NewGuid().ToString("N") }, null, cancellationToken);
            return HandlerResult.Done;
        }

        if (served.Length != file.Size || !string.Equals(served.Sha256Hex, file.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            return await FailAsync(run.Id, file.Name,
                $"read back from OBS it is {served.Length} bytes, SHA-256 {served.Sha256Hex}; the copy recorded {file.Size} bytes, SHA-256 {file.Sha256}",
                cancellationToken, step: RunStep.Verifying);
        }

        return await FileInObsAsync(run, file.Name, served.Length, upload, startedAt, cancellationToken);
    }

    /// <summary>The file is in OBS (and, for a drill, read back): it counts as uploaded, and the import starts once every file is.</summary>
    private async Task<HandlerResult> FileInObsAsync(RunRecord run, string fileName, long length, RestoreUploadMessage upload, DateTimeOffset startedAt,
        CancellationToken cancellationToken)
    {
        await RecordFileAsync(run, fileName, startedAt, f => f.Complete(f.Size ?? length, null, null, f.Verification ?? "manifest", startedAt, time.GetUtcNow()),
            cancellationToken);
        return await ImportWhenUploadedAsync(run.Id, upload, cancellationToken);
    }

    private async Task<HandlerResult> FailAsync(string runId, string file, string reason, CancellationToken cancellationToken, RunStep step = RunStep.Uploading)
    {
        Log.FileFailed(logger, runId, file, reason);
        await Runs.UpdateAsync(runId, r => r.FailFile(file, step, reason, time.GetUtcNow(), endRun: true), cancellationToken);
        return HandlerResult.Done;
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
