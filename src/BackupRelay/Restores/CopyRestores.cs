using System.Text.Json;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud;
using BackupRelay.Messaging;
using BackupRelay.Runs;

namespace BackupRelay.Restores;

/// <summary>What a restore from a copy starts: which copy, into which graph, through which OBS path, as which run.</summary>
/// <param name="GraphId">The run's graph: the restore's target, or for a drill the graph whose copy it proves.</param>
/// <param name="TargetGraphId">The graph GES imports into (a drill's target); null: <paramref name="GraphId"/>.</param>
/// <param name="Folder">The copy's graph folder in the destination.</param>
public sealed record CopyRestoreRequest(string RunId, RunKind Kind, string Trigger, string GraphId, string? TargetGraphId, string Folder, string BackupId,
    string ObsPath, bool AcceptUnverified, string? RequestDigest = null, DateTimeOffset? CopyMadeAt = null, bool AcceptIncomplete = false);

/// <summary>How a start ended: the run started, the copy refused (why), or another restore holds the target graph.</summary>
public abstract record CopyRestoreStart
{
    public sealed record Started(RunRecord Run) : CopyRestoreStart;

    public sealed record Refused(string Reason) : CopyRestoreStart;

    public sealed record TargetBusy(string HolderRunId) : CopyRestoreStart;
}

/// <summary>
/// Starts a restore from a copy — the one path for <c>POST /api/graphs/{id}/restores</c> and for scheduled
/// restore drills: the copy is checked (manifest present, every file there, verified, matching it and the
/// record of the run that made it), the target graph is claimed (one restore into a graph at a time), the run
/// is created and one upload message per file goes to the <c>restore-upload</c> queue.
/// </summary>
public sealed class CopyRestores(RunStore runs, WorkQueues queues, ICopyDestination destination, TimeProvider time)
{
    public async Task<CopyRestoreStart> StartAsync(CopyRestoreRequest request, CancellationToken cancellationToken)
    {
        var (manifest, refusal) = await CheckCopyAsync(destination, request.Folder, request.BackupId, request.AcceptUnverified, cancellationToken);
        var checkedAgainst = "manifest";
        CopyLevel? level = null;
        if (refusal is null)
        {
            (checkedAgainst, level, refusal) = await CheckAgainstRecordAsync(runs, manifest!, request.Folder, request.BackupId, request.AcceptUnverified,
                request.AcceptIncomplete, cancellationToken);
        }

        if (refusal is not null)
        {
            return new CopyRestoreStart.Refused(refusal);
        }

        // One restore into a graph at a time (drills included): a second would upload to the same OBS keys and fail late in GES.
        if (await RestoreTargets.TryClaimAsync(runs, request.TargetGraphId ?? request.GraphId, request.RunId, cancellationToken) is { } running)
        {
            return new CopyRestoreStart.TargetBusy(running);
        }

        var now = time.GetUtcNow();
        var (run, _) = await runs.CreateAsync(RunRecord.NewCopyRestore(request.RunId, request.Kind, request.Trigger, request.GraphId, request.TargetGraphId,
            request.BackupId, request.Folder, request.ObsPath, request.RequestDigest, request.CopyMadeAt, manifest!.Backup,
            manifest.Files.Select(f => (f.Name, f.Size, f.Md5, f.Sha256)), checkedAgainst, level, now), cancellationToken);
        return new CopyRestoreStart.Started(await QueueUploadsAsync(run, cancellationToken));
    }

    /// <summary>
    /// One upload message per file, then the run shows <c>uploading</c>. A run still <c>queued</c> (its start
    /// failed between the two) sends them again: uploads are idempotent. Returns the run as it is now.
    /// </summary>
    public async Task<RunRecord> QueueUploadsAsync(RunRecord run, CancellationToken cancellationToken)
    {
        if (run.IsFinished || run.Step != RunStep.Queued)
        {
            return run;
        }

        foreach (var file in run.Files)
        {
            await queues.SendUploadAsync(new RestoreUploadMessage(MessageParser.CurrentVersion, run.Id, file.Name, 0, Guid.NewGuid().ToString("N")),
                null, cancellationToken);
        }

        return await runs.UpdateAsync(run.Id, r =>
        {
            return r.UploadsQueued(time.GetUtcNow());
        }, cancellationToken);
    }

    /// <summary>The copy's manifest, or why it cannot be restored: no manifest, another backup's, or a file missing, unverified or not matching it.</summary>
    public static async Task<(BackupManifest? Manifest, string? Refusal)> CheckCopyAsync(ICopyDestination destination, string folder, string backupId,
        bool acceptUnverified, CancellationToken cancellationToken)
    {
        var root = CopyPaths.Backup(folder, backupId) + "/";
        var content = await destination.ReadSmallFileAsync(root + CopyBackupFileHandler.ManifestName, cancellationToken);
        if (content is null)
        {
            return (null, $"There is no complete copy of backup {backupId} of graph {folder}: {root}{CopyBackupFileHandler.ManifestName} does not exist " +
                "(the copy never finished, or the graph or backup id is wrong; sourceGraph names the graph's folder).");
        }

        BackupManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(content, BackupRelayJson.Default.BackupManifest);
        }
        catch (JsonException)
        {
            manifest = null;
        }

        if (manifest is null || manifest.Files is null || manifest.Files.Count == 0)
        {
            return (null, $"The manifest {root}{CopyBackupFileHandler.ManifestName} is unreadable or lists no file.");
        }

        if (manifest.Backup is { } listed && listed.Id != backupId)
        {
            return (null, $"The manifest {root}{CopyBackupFileHandler.ManifestName} describes backup {listed.Id}, not {backupId}.");
        }

        foreach (var file in manifest.Files)
        {
            if (!CopyPaths.IsSafeSegment(file.Name))
            {
                return (null, $"The manifest lists a file name that is not path-safe: {file.Name}.");
            }

            var committed = await destination.GetCommittedAsync(root + file.Name, cancellationToken);
            if (committed is null)
            {
                return (null, $"{file.Name} is missing from the copy ({root}).");
            }

            if (committed.Offline)
            {
                return (null, $"{file.Name} is in the Archive tier (Destination lifecycle archiveAfterDays): rehydrate the copy to Hot or Cool " +
                    "(az storage blob set-tier --tier Hot --rehydrate-priority High) and ask again.");
            }

            if (!committed.Verified)
            {
                return (null, $"{file.Name} is not marked verified in the copy: it was never checked against the source.");
            }

            if (committed.Verification == Verification.ReceivedOnly && !acceptUnverified)
            {
                return (null, $"{file.Name} was stored as received but never checked against the source (verification received-only: the source " +
                    "declared no checksum usable for it): send \"acceptUnverified\": true to restore it anyway.");
            }

            if (committed.Length != file.Size || !string.Equals(committed.Md5Hex, file.Md5, StringComparison.OrdinalIgnoreCase)
                || (committed.Sha256Hex is not null && !string.Equals(committed.Sha256Hex, file.Sha256, StringComparison.OrdinalIgnoreCase)))
            {
                return (null, $"{file.Name} does not match the manifest: {committed.Length} bytes, MD5 {committed.Md5Hex}; the manifest says {file.Size} bytes, MD5 {file.Md5}.");
            }
        }

        return (manifest, null);
    }

    /// <summary>
    /// The manifest, a file in the destination, can be rewritten by whoever can write there; the record of the
    /// run that made the copy is in the app's own storage (another account). Only that record vouches for a copy:
    /// a backup run of the manifest's graph and of this backup, ended, whose copied files are exactly the
    /// manifest's (names, sizes, MD5 and SHA-256) — the restore's uploads then check the bytes against those
    /// hashes. A restore's, a drill's, a failed or an unended run never vouches. The record's
    /// <see cref="CopyTrust"/> is the level the copy proved: below <see cref="CopyLevel.Verified"/> it is refused
    /// unless the request accepts that level (<paramref name="acceptUnverified"/> a received-only copy,
    /// <paramref name="acceptIncomplete"/> an incomplete one); accepting a lower level never changes which record is
    /// trusted. Returns what the check rested on (<c>run-record</c>, or <c>manifest</c> when the request accepts a
    /// copy whose run record is gone), the level the copy proved (null: not known, no record), or why it is refused.
    /// </summary>
    public static async Task<(string CheckedAgainst, CopyLevel? Level, string? Refusal)> CheckAgainstRecordAsync(IRunRecords runs, BackupManifest manifest,
        string folder, string backupId, bool acceptUnverified, bool acceptIncomplete, CancellationToken cancellationToken)
    {
        RunRecord? made;
        try
        {
            made = HuaweiCloudIds.IsValidId(manifest.RunId) ? await runs.GetAsync(manifest.RunId, cancellationToken) : null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException)
        {
            made = null;
        }

        var copy = $"{folder}/{backupId}";
        if (made is null)
        {
            return acceptUnverified
                ? ("manifest", null, null)
                : ("manifest", null, $"The manifest of {copy} names run {manifest.RunId} as the one that made the copy, and there is no readable record " +
                    "of it (deleted after Backup__RunRetention, made by another deployment, or the manifest was edited): the copy cannot be checked " +
                    "against what was recorded when it was made. Send \"acceptUnverified\": true to restore it on the manifest's word.");
        }

        if (Vouches(made, manifest, backupId) is { } why)
        {
            return ("run-record", null, $"The manifest of {copy} names run {made.Id}, which cannot vouch for this copy: {why}.");
        }

        var trust = made.Trust!;
        if (trust.Level == CopyLevel.Incomplete && !acceptIncomplete)
        {
            return ("run-record", trust.Level, $"The copy {copy} is incomplete: run {made.Id} ended {made.Status} and did not copy " +
                $"{(trust.Missing.Count == 0 ? "any file" : string.Join(", ", trust.Missing))}. Send \"acceptIncomplete\": true to restore the files it has.");
        }

        if (trust.Level == CopyLevel.ReceivedOnly && !acceptUnverified)
        {
            return ("run-record", trust.Level, $"The copy {copy} was never checked against its source ({trust.Summary}). " +
                "Send \"acceptUnverified\": true to restore it anyway.");
        }

        var recorded = made.Files.Where(f => f.Status == RunFileStatus.Completed).ToDictionary(f => f.Name, StringComparer.Ordinal);
        if (recorded.Count != manifest.Files.Count)
        {
            return ("run-record", trust.Level, $"The manifest of {copy} lists {manifest.Files.Count} files; run {made.Id} recorded {recorded.Count} copied. " +
                "The copy is not as it was made.");
        }

        foreach (var file in manifest.Files)
        {
            if (!recorded.TryGetValue(file.Name, out var at)
                || at.Size != file.Size
                || !string.Equals(at.Md5, file.Md5, StringComparison.OrdinalIgnoreCase)
                || !string.Equals(at.Sha256, file.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                return ("run-record", trust.Level, $"{file.Name} in the manifest of {copy} does not match what run {made.Id} recorded when it made the copy " +
                    $"({(at is null ? "no such file copied" : $"{at.Size} bytes, SHA-256 {at.Sha256}")}): the copy was changed after it was made.");
            }
        }

        return ("run-record", trust.Level, null);
    }

    /// <summary>Why <paramref name="made"/> is not the run that made the copy <paramref name="manifest"/> describes, or null when it is.</summary>
    private static string? Vouches(RunRecord made, BackupManifest manifest, string backupId) =>
        made.Kind != RunKind.Backup ? $"it is a {made.Kind.Name()} run, and only the backup run that made a copy vouches for it"
        : made.GraphId != manifest.GraphId ? $"it backed up graph {made.GraphId}, not {manifest.GraphId}"
        : made.BackupId != backupId ? $"it copied backup {made.BackupId}, not {backupId}"
        : !made.IsFinished ? "it has not ended"
        : made.Status == RunStatus.Failed ? "it failed"
        : null;
}
