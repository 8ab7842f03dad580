using System.Text.Json;
using BackupRelay.Configuration;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Restores;
using BackupRelay.Runs;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace BackupRelay.Http;

public static partial class HttpApi
{
    /// <summary>
    /// <c>POST /api/graphs/{graphId}/restores</c>: bring a verified copy back — upload its files from the
    /// destination to OBS, then import them into the graph. The copy is checked here (manifest present,
    /// every file there, verified and matching it: 409 otherwise, nothing uploaded); the run then goes
    /// through the <c>restore-upload</c> queue and <c>PollOperation</c>. Same <c>Idempotency-Key</c>, same run.
    /// </summary>
    internal static async Task<IResult> RestoreFromCopyAsync(HttpContext context, string graphId, RunStore runs, WorkQueues queues, GesClient ges,
        ICopyDestination destination, IOptions<HttpOptions> http, IOptions<BackupOptions> backup, IOptions<ObsOptions> obsOptions, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        CheckId(graphId, "graphId", errors);
        var key = IdempotencyKey(context, errors);

        var (body, bodyProblem) = await ReadBodyAsync(context, http.Value, time, signed: true);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        var backupId = OptionalString(body, "backupId", 128, errors);
        if (backupId is null && !errors.ContainsKey("backupId"))
        {
            errors["backupId"] = ["backupId is required: the GES backup id of the copy (its folder in the destination)."];
        }
        else if (backupId is not null)
        {
            CheckId(backupId, "backupId", errors);
        }

        var sourceGraph = OptionalString(body, "sourceGraph", 128, errors);
        if (sourceGraph is not null)
        {
            CheckId(sourceGraph, "sourceGraph", errors);
        }

        var acceptUnverified = false;
        if (body is { } given && given.TryGetProperty("acceptUnverified", out var accept) && accept.ValueKind != JsonValueKind.Null)
        {
            if (accept.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                acceptUnverified = accept.GetBoolean();
            }
            else
            {
                errors["acceptUnverified"] = ["acceptUnverified must be true or false."];
            }
        }

        var settings = obsOptions.Value;
        string? obsPath = null;
        if (OptionalString(body, "obsPath", 1024, errors) is { } raw)
        {
            if (!TryObsPath(raw, out obsPath))
            {
                errors["obsPath"] = ["obsPath must be an OBS path: obs://bucket/prefix/ or bucket/prefix/ (bucket: 3-63 of a-z, 0-9, '-', '.')."];
            }
            else if (!obsPath!.EndsWith('/'))
            {
                obsPath += "/";
            }
        }
        else if (!errors.ContainsKey("obsPath") && string.IsNullOrEmpty(settings.Bucket))
        {
            errors["obsPath"] = ["obsPath is required: no default bucket is configured (Obs__Bucket)."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        if (!settings.IsConfigured)
        {
            return TypedResults.Problem("Restores from a copy write to OBS and need its credentials: set Obs__AccessKeyId and Obs__SecretAccessKey " +
                "(or HuaweiCloud__Auth__AccessKey/SecretKey) and Obs__Endpoint or HuaweiCloud__Region.", statusCode: 501, title: "Restores from a copy are not configured");
        }

        var digest = RequestDigest(graphId, backupId, sourceGraph, obsPath, acceptUnverified);
        var runId = RunId("rfc-", graphId, key);
        if (await runs.GetAsync(runId, context.RequestAborted) is { } existing)
        {
            if (key.Length > 0 && existing.RequestDigest is { } earlier && earlier != digest)
            {
                return TypedResults.Problem($"Idempotency-Key {key} was used for run {existing.Id} with another request (backupId, sourceGraph or obsPath differ): " +
                    "use a new key for a new restore.", statusCode: 422, title: "Idempotency-Key reused",
                    extensions: new Dictionary<string, object?> { ["field"] = "Idempotency-Key", ["runId"] = existing.Id });
            }

            return await QueueUploadsAsync(context, existing, runs, queues);
        }

        // The target graph must exist; its GES name is also where its own copies are when it has no configured Name.
        GesGraph target;
        try
        {
            target = await ges.GetGraphAsync(graphId, context.RequestAborted);
        }
        catch (HuaweiCloudException ex)
        {
            return Upstream(ex);
        }

        var folder = sourceGraph ?? backup.Value.CopyFolder(graphId, target.Name);
        obsPath ??= $"{settings.Bucket}/{settings.Prefix}{folder}/{backupId}/";
        var (manifest, refusal) = await CheckCopyAsync(destination, folder, backupId!, acceptUnverified, context.RequestAborted);
        var checkedAgainst = "manifest";
        if (refusal is null)
        {
            (checkedAgainst, refusal) = await CheckAgainstRecordAsync(runs, manifest!, folder, backupId!, acceptUnverified, context.RequestAborted);
        }

        if (refusal is not null)
        {
            return TypedResults.Problem(refusal, statusCode: 409, title: "The copy cannot be restored",
                type: "https://backuprelay/problems/copy-not-restorable",
                extensions: new Dictionary<string, object?> { ["graph"] = folder, ["backupId"] = backupId });
        }

        // One restore into a graph at a time: a second would upload to the same OBS keys and fail late in GES.
        if (await RestoreTargets.TryClaimAsync(runs, graphId, runId, context.RequestAborted) is { } running)
        {
            return TypedResults.Problem($"A restore into graph {graphId} is running (run {running}): wait for it to end (GET /api/runs/{running}).",
                statusCode: 409, title: "A restore into this graph is running", type: "https://backuprelay/problems/restore-running",
                extensions: new Dictionary<string, object?> { ["runId"] = running });
        }

        var now = time.GetUtcNow();
        var (run, _) = await runs.CreateAsync(new RunRecord
        {
            Id = runId,
            Kind = UploadToObsHandler.Kind,
            Trigger = "http",
            GraphId = graphId,
            BackupId = backupId,
            SourceGraph = folder,
            ImportPath = obsPath,
            RequestDigest = digest,
            Backup = manifest!.Backup,
            Status = RunStatus.Running,
            Step = "queued",
            CreatedAt = now,
            UpdatedAt = now,
            Files = [.. manifest.Files.Select(f => new RunFile { Name = f.Name, Size = f.Size, Md5 = f.Md5, Sha256 = f.Sha256, Verification = checkedAgainst })],
        }, context.RequestAborted);
        return await QueueUploadsAsync(context, run, runs, queues);
    }

    /// <summary>
    /// One upload message per file, then the run shows <c>uploading</c>. A repeated request for a run
    /// still <c>queued</c> (its first request failed between the two) sends them again: uploads are idempotent.
    /// </summary>
    private static async Task<IResult> QueueUploadsAsync(HttpContext context, RunRecord run, RunStore runs, WorkQueues queues)
    {
        if (run.IsFinished || run.Step != "queued")
        {
            return Accepted(context, run);
        }

        foreach (var file in run.Files)
        {
            await queues.SendUploadAsync(new RestoreUploadMessage(MessageParser.CurrentVersion, run.Id, file.Name, 0, Guid.NewGuid().ToString("N")),
                null, context.RequestAborted);
        }

        var updated = await runs.UpdateAsync(run.Id, r =>
        {
            if (r.Step != "queued")
            {
                return false;
            }

            r.Step = "uploading";
            return true;
        }, context.RequestAborted);
        return Accepted(context, updated);
    }

    /// <summary>The copy's manifest, or why it cannot be restored: no manifest, another backup's, or a file missing, unverified or not matching it.</summary>
    internal static async Task<(BackupManifest? Manifest, string? Refusal)> CheckCopyAsync(ICopyDestination destination, string folder, string backupId,
        bool acceptUnverified, CancellationToken cancellationToken)
    {
        var root = $"{folder}/{backupId}/";
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
            if (!HuaweiCloudIds.IsValidId(file.Name))
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
    /// run that made the copy is in the app's own storage (another account). A copy is restored only when its
    /// manifest lists exactly the files, sizes and hashes that run recorded as copied — the restore's uploads
    /// then check the bytes against those hashes. Returns what the check rested on (<c>run-record</c>, or
    /// <c>manifest</c> when the request accepts a copy whose run record is gone) or why it is refused.
    /// </summary>
    internal static async Task<(string CheckedAgainst, string? Refusal)> CheckAgainstRecordAsync(RunStore runs, BackupManifest manifest, string folder,
        string backupId, bool acceptUnverified, CancellationToken cancellationToken)
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

        if (made is null)
        {
            return acceptUnverified
                ? ("manifest", null)
                : ("manifest", $"The manifest of {folder}/{backupId} names run {manifest.RunId} as the one that made the copy, and there is no readable record " +
                    "of it (deleted after Backup__RunRetention, made by another deployment, or the manifest was edited): the copy cannot be checked " +
                    "against what was recorded when it was made. Send \"acceptUnverified\": true to restore it on the manifest's word.");
        }

        var recorded = made.Files.Where(f => f.Status == RunFileStatus.Completed).ToDictionary(f => f.Name, StringComparer.Ordinal);
        if (made.BackupId != backupId)
        {
            return ("run-record", $"The manifest of {folder}/{backupId} names run {made.Id}, which copied backup {made.BackupId}: the manifest was not written for this copy.");
        }

        if (recorded.Count != manifest.Files.Count)
        {
            return ("run-record", $"The manifest of {folder}/{backupId} lists {manifest.Files.Count} files; run {made.Id} recorded {recorded.Count} copied. " +
                "The copy is not as it was made.");
        }

        foreach (var file in manifest.Files)
        {
            if (!recorded.TryGetValue(file.Name, out var at)
                || at.Size != file.Size
                || !string.Equals(at.Md5, file.Md5, StringComparison.OrdinalIgnoreCase)
                || !string.Equals(at.Sha256, file.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                return ("run-record", $"{file.Name} in the manifest of {folder}/{backupId} does not match what run {made.Id} recorded when it made the copy " +
                    $"({(at is null ? "no such file copied" : $"{at.Size} bytes, SHA-256 {at.Sha256}")}): the copy was changed after it was made.");
            }
        }

        return ("run-record", null);
    }

    /// <summary>What a restore request asked for, as one digest (the fields as given, before defaults).</summary>
    private static string RequestDigest(string graphId, string? backupId, string? sourceGraph, string? obsPath, bool acceptUnverified) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            string.Join('\n', graphId, backupId ?? "", sourceGraph ?? "", obsPath ?? "", acceptUnverified ? "accept-unverified" : ""))));
}
