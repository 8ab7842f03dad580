using Azure;
using Azure.Storage.Blobs.Models;
using BackupRelay.Runs;
using BackupRelay.Storage;

namespace BackupRelay.Restores;

/// <summary>
/// One restore into a graph at a time. Each target graph has a small blob naming the restore run that
/// holds it; a new restore takes it (conditional write) unless that run is still going. Nothing releases
/// it: a finished run's claim is simply taken over, so a crash never leaves a graph locked.
/// </summary>
public static class RestoreTargets
{
    private static string BlobName(string graphId) => $"restore-targets/{graphId}";

    /// <summary>Claims <paramref name="graphId"/> for <paramref name="runId"/>; returns the id of the unfinished restore holding it instead, if any.</summary>
    public static async Task<string?> TryClaimAsync(RunStore runs, string graphId, string runId, CancellationToken cancellationToken)
    {
        var blob = runs.Container.GetBlobClient(BlobName(graphId));
        for (var attempt = 0; ; attempt++)
        {
            string? holder = null;
            ETag? etag = null;
            try
            {
                var current = (await blob.DownloadContentAsync(cancellationToken)).Value;
                (holder, etag) = (current.Content.ToString(), current.Details.ETag);
            }
            catch (RequestFailedException ex) when (StorageErrors.IsNotFound(ex))
            {
            }

            if (holder is not null && holder != runId && await IsRunningAsync(runs, holder, cancellationToken))
            {
                return holder;
            }

            try
            {
                var conditions = etag is { } known ? new BlobRequestConditions { IfMatch = known } : new BlobRequestConditions { IfNoneMatch = ETag.All };
                await blob.UploadAsync(BinaryData.FromString(runId), new BlobUploadOptions { Conditions = conditions }, cancellationToken);
                return null;
            }
            catch (RequestFailedException ex) when (ex.Status is 409 or 412 && attempt < 10)
            {
                // Another request claimed it between our read and write: look again.
            }
        }
    }

    private static async Task<bool> IsRunningAsync(RunStore runs, string runId, CancellationToken cancellationToken)
    {
        try
        {
            return await runs.GetAsync(runId, cancellationToken) is { IsFinished: false };
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidDataException)
        {
            return false; // an unreadable record holds nothing
        }
    }
}
