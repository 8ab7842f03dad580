using System.Text.Json;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Copying;

/// <summary>
/// Copies one slice of one file of a run, re-enqueuing its continuation until done. The delivery
/// that finishes the last file writes <c>manifest.json</c> beside the files and closes the run.
/// </summary>
public sealed partial class CopyBackupFileHandler(
    IRunRecords runs,
    GesClient ges,
    IWorkSender queues,
    FileCopier copier,
    ICopyDestination destination,
    IOptions<BackupOptions> options,
    IOptions<CopyOptions> copyOptions,
    TimeProvider time,
    ILogger<CopyBackupFileHandler> logger,
    Telemetry.BackupRelayMetrics metrics) : RunStepFunction<CopyBackupFileMessage>(runs, BackupRelayJson.Default.CopyBackupFileMessage)
{
    public const string ManifestName = "manifest.json";

    public override string Queue => QueueNames.CopyBackupFile;

    protected override async Task<HandlerResult> HandleAsync(CopyBackupFileMessage copy, RunRecord run, long dequeueCount, CancellationToken cancellationToken)
    {
        if (!HuaweiCloudIds.IsValidId(copy!.File))
        {
            return HandlerResult.Park("unsupported message: the file must be a path-safe name");
        }

        System.Diagnostics.Activity.Current?.SetTag(Telemetry.BackupRelayTelemetry.File, copy.File);
        var file = run!.Files.FirstOrDefault(f => f.Name == copy.File);
        if (run.BackupId is null || file is null)
        {
            return run.IsFinished ? HandlerResult.Done : HandlerResult.Retry($"run {run.Id} does not list file {copy.File} yet");
        }

        if (file.Status is RunFileStatus.Completed or RunFileStatus.Failed)
        {
            await FinishRunIfDoneAsync(run.Id, cancellationToken);
            return HandlerResult.Done;
        }

        if (run.IsFinished)
        {
            return HandlerResult.Done;
        }

        if (copy.Attempt is < 0 or > BlockIds.MaxGeneration)
        {
            return HandlerResult.Park($"unsupported message: attempt {copy.Attempt} is out of range");
        }

        await CopySliceAsync(run, copy, cancellationToken);
        return HandlerResult.Done;
    }

    /// <summary>Copies the next slice: sends the continuation, copies again from scratch, or ends the file (and the run when it was the last).</summary>
    private async Task CopySliceAsync(RunRecord run, CopyBackupFileMessage copy, CancellationToken cancellationToken)
    {
        var backupId = run.BackupId!;
        var link = await LinkAsync(run.GraphId, backupId, copy.File, cancellationToken);
        if (link is null)
        {
            await FileFailedAsync(run.Id, copy.File, "the file is no longer listed in the backup's download links", cancellationToken);
            await FinishRunIfDoneAsync(run.Id, cancellationToken);
            return;
        }

        var startedAt = time.GetUtcNow();
        var result = await copier.CopyAsync(destination, new CopyRequest(
            $"{run.Id}/{copy.File}", FilePath(run, copy.File), link,
            async ct => await LinkAsync(run.GraphId, backupId, copy.File, ct) ?? throw new CopyFailedException("the file is no longer listed"),
            copy.Continuation,
            new Dictionary<string, string> { ["backuprelay_run"] = run.Id, ["backuprelay_graph"] = run.GraphId, ["backuprelay_backup"] = backupId },
            copy.Attempt),
            cancellationToken);

        var sliceStart = copy.Continuation?.Offset ?? 0;
        switch (result.Outcome)
        {
            case CopyOutcome.Continue:
                var offset = result.Continuation!.Offset;
                // Counted once per slice: a redelivered slice that adds nothing is not counted again.
                if (await Runs.UpdateFileAsync(run.Id, copy.File, f => f.Progress(offset, result.Length, startedAt), time.GetUtcNow(), cancellationToken) > 0)
                {
                    metrics.SliceCopied(run.GraphId, offset - sliceStart, time.GetUtcNow() - startedAt);
                }

                await queues.SendCopyAsync(copy with { Continuation = result.Continuation }, cancellationToken);
                Log.Slice(logger, run.Id, copy.File, offset, result.Length);
                return;

            case CopyOutcome.Completed:
                if (await Runs.UpdateFileAsync(run.Id, copy.File,
                    f => f.Complete(result.Length, result.Md5Hex, result.Sha256Hex, result.Verification, startedAt, time.GetUtcNow(), result.VerificationNote), time.GetUtcNow(),
                    cancellationToken) is not null)
                {
                    metrics.SliceCopied(run.GraphId, result.Length - sliceStart, time.GetUtcNow() - startedAt);
                }

                LogFileDone(run.Id, copy.File, result);
                break;

            case CopyOutcome.Failed when result.ContentMismatch && copy.Attempt + 1 < copyOptions.Value.MaxContentAttempts:
                // The bytes were not the source's: copy the file again from scratch, under new block ids.
                await Runs.UpdateFileAsync(run.Id, copy.File, f => f.CopyAgain(copy.Attempt, result.FailureReason) ? 0 : null, time.GetUtcNow(), cancellationToken);
                await queues.SendCopyAsync(copy with { Continuation = null, Attempt = copy.Attempt + 1 }, cancellationToken);
                Log.CopyAgain(logger, run.Id, copy.File, copy.Attempt + 2, copyOptions.Value.MaxContentAttempts, result.FailureReason ?? "");
                return;

            default:
                var attempts = result.ContentMismatch ? $" (after {copy.Attempt + 1} copies from scratch)" : "";
                await FileFailedAsync(run.Id, copy.File, (result.FailureReason ?? "copy failed") + attempts, cancellationToken);
                break;
        }

        await FinishRunIfDoneAsync(run.Id, cancellationToken);
    }

    /// <summary>A copy that was not checked against the source never reads as verified, not even in the log.</summary>
    private void LogFileDone(string runId, string file, CopyResult result)
    {
        if (result.Verification == Verification.ReceivedOnly)
        {
            Log.FileDoneUnverified(logger, runId, file, result.Length);
        }
        else
        {
            Log.FileDone(logger, runId, file, result.Length, result.Verification ?? "");
        }
    }

    /// <summary><c>&lt;graph name&gt;/&lt;backup id&gt;/&lt;file&gt;</c>.</summary>
    public string FilePath(RunRecord run, string file) => CopyPaths.File(Folder(run), run.BackupId!, file);

    private string Folder(RunRecord run) => options.Value.CopyFolder(run.GraphId, run.GraphName);

    private async Task<Uri?> LinkAsync(string graphId, string backupId, string file, CancellationToken cancellationToken)
    {
        var files = await ges.GetDownloadLinksAsync(graphId, backupId, cancellationToken);
        var entry = files.Files.FirstOrDefault(f => f.Name == file);
        return entry is null || !Uri.TryCreate(entry.DownloadLink, UriKind.Absolute, out var uri) ? null : uri;
    }

    private Task FileFailedAsync(string runId, string file, string reason, CancellationToken cancellationToken)
    {
        Log.FileFailed(logger, runId, file, reason);
        return Runs.UpdateAsync(runId, r => r.FailFile(file, RunStep.Copying, reason, time.GetUtcNow(), endRun: false), cancellationToken);
    }

    /// <summary>When every file has ended: manifest (all copied) and the run's final status. Safe to repeat.</summary>
    private async Task FinishRunIfDoneAsync(string runId, CancellationToken cancellationToken)
    {
        var run = await Runs.GetAsync(runId, cancellationToken);
        if (run is null || run.IsFinished || run.Files.Count == 0 || run.Files.Any(f => f.Status is RunFileStatus.Pending or RunFileStatus.Copying))
        {
            return;
        }

        var copied = run.Files.Count(f => f.Status == RunFileStatus.Completed);
        if (copied == run.Files.Count)
        {
            using var span = Telemetry.BackupRelayTelemetry.Source.StartActivity("manifest");
            span?.SetTag(Telemetry.BackupRelayTelemetry.RunId, run.Id);
            span?.SetTag(Telemetry.BackupRelayTelemetry.BackupId, run.BackupId);
            var manifest = new BackupManifest(1, run.Id, run.GraphId, run.GraphName, run.Backup, run.JobId, run.CreatedAt, time.GetUtcNow(),
                [.. run.Files.Select(f => new ManifestFile(f.Name, f.Size ?? 0, f.Md5, f.Sha256!, f.StartedAt, f.CompletedAt, f.Slices, f.Verification))]);
            var manifestPath = CopyPaths.File(Folder(run), run.BackupId!, ManifestName);
            if (!await SameManifestWrittenAsync(manifestPath, manifest, cancellationToken))
            {
                await destination.WriteSmallFileAsync(manifestPath,
                    JsonSerializer.SerializeToUtf8Bytes(manifest, BackupRelayJson.Default.BackupManifest), "application/json", cancellationToken);
            }
        }

        await Runs.UpdateAsync(runId, r =>
        {
            if (r.IsFinished)
            {
                return false;
            }

            r.FinishByFiles(time.GetUtcNow());
            return true;
        }, cancellationToken);
        Log.RunFinished(logger, runId, copied, run.Files.Count);
    }

    /// <summary>
    /// A redelivered finish finds the manifest it wrote: kept as it is (a write-once destination refuses a
    /// second write, and the first is as true). One that lists other files or hashes is replaced.
    /// </summary>
    private async Task<bool> SameManifestWrittenAsync(string path, BackupManifest manifest, CancellationToken cancellationToken)
    {
        if (await destination.ReadSmallFileAsync(path, cancellationToken) is not { } bytes)
        {
            return false;
        }

        BackupManifest? existing;
        try
        {
            existing = JsonSerializer.Deserialize(bytes, BackupRelayJson.Default.BackupManifest);
        }
        catch (JsonException)
        {
            return false;
        }

        static string Key(IEnumerable<ManifestFile> files) =>
            string.Join('\n', files.OrderBy(f => f.Name, StringComparer.Ordinal).Select(f => $"{f.Name} {f.Size} {f.Md5} {f.Sha256}"));
        return existing is not null && existing.GraphId == manifest.GraphId && Key(existing.Files) == Key(manifest.Files);
    }

    private static partial class Log
    {
        [LoggerMessage(50, LogLevel.Information, "Run {RunId}: {File} copied up to {Offset} of {Size} bytes; continuing")]
        public static partial void Slice(ILogger logger, string runId, string file, long offset, long size);

        [LoggerMessage(51, LogLevel.Information, "Run {RunId}: {File} copied and verified ({Size} bytes, {Verification})")]
        public static partial void FileDone(ILogger logger, string runId, string file, long size, string verification);

        [LoggerMessage(57, LogLevel.Warning, "Run {RunId}: {File} copied ({Size} bytes) but NOT verified against the source (received-only)")]
        public static partial void FileDoneUnverified(ILogger logger, string runId, string file, long size);

        [LoggerMessage(52, LogLevel.Error, "Run {RunId}: {File} could not be copied: {Reason}")]
        public static partial void FileFailed(ILogger logger, string runId, string file, string reason);

        [LoggerMessage(54, LogLevel.Warning, "Run {RunId}: {File} did not match the source ({Reason}); copying it again from scratch, attempt {Attempt} of {Max}")]
        public static partial void CopyAgain(ILogger logger, string runId, string file, int attempt, int max, string reason);

        [LoggerMessage(53, LogLevel.Information, "Run {RunId} finished: {Copied} of {Files} files copied")]
        public static partial void RunFinished(ILogger logger, string runId, int copied, int files);
    }
}
