using Azure;
using Azure.Storage.Blobs.Models;
using BackupRelay.Storage;

namespace BackupRelay.Runs;

/// <summary>
/// One copy per GES backup: a claim blob (<c>copies/{backup}.json</c>) beside the run records names the run
/// that copies it; runs that adopted the same backup follow that run.
/// </summary>
public static class CopyClaims
{
    /// <summary>
    /// Claims the copy of GES backup <paramref name="backupId"/> for <paramref name="runId"/>: one run
    /// copies a backup, others that adopted the same backup follow it. Returns the run that owns the copy
    /// — this one if it claimed it (or claimed it before: a redelivery), or took over a claim whose run
    /// ended without copying it, or whose run record is gone.
    /// </summary>
    public static async Task<string> ClaimAsync(RunStore runs, string backupId, string runId, CancellationToken cancellationToken = default)
    {
        var claim = runs.Container.GetBlobClient($"copies/{backupId}.json");
        for (var attempt = 0; attempt < RunStore.MaxAttempts; attempt++)
        {
            var created = await BlobWrites.UploadAsync(claim, BinaryData.FromString(runId), RunStore.Upload(BlobWrites.IfNotExists()), cancellationToken);
            if (created.Succeeded)
            {
                return runId;
            }

            BlobDownloadResult current;
            try
            {
                current = (await claim.DownloadContentAsync(cancellationToken)).Value;
            }
            catch (RequestFailedException ex) when (StorageErrors.IsNotFound(ex))
            {
                continue;
            }

            var owner = current.Content.ToString();
            if (owner == runId)
            {
                return runId;
            }

            var ownerRun = await runs.GetAsync(owner, cancellationToken);
            if (ownerRun is not null && (!ownerRun.IsFinished || ownerRun.Status == RunStatus.Succeeded))
            {
                return owner;
            }

            // The owner ended without a complete copy (or is gone): this run copies the backup instead.
            var taken = await BlobWrites.UploadAsync(claim, BinaryData.FromString(runId), RunStore.Upload(BlobWrites.IfMatch(current.Details.ETag)), cancellationToken);
            if (taken.Succeeded)
            {
                return runId;
            }
        }

        throw new RequestFailedException(412, $"The copy claim of backup {backupId} kept changing under {RunStore.MaxAttempts} attempts.", "ConditionNotMet", null);
    }
}
