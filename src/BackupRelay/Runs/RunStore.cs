using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using BackupRelay.Messaging;
using BackupRelay.Storage;

namespace BackupRelay.Runs;

/// <summary>Told when a run is created and when it ends (each exactly once per stored transition).</summary>
public interface IRunObserver
{
    void Created(RunRecord run);

    void Finished(RunRecord run);

    /// <summary>Queues the ended run's notification; true when queued (the store then marks the run).</summary>
    Task<bool> QueueNotificationAsync(RunRecord run);

    /// <summary>A record that cannot be read (truncated, hand-edited) was skipped by a listing.</summary>
    void Unreadable(string runId, string reason);
}

/// <summary>Run records in blob storage, changed only with ETag conditions: concurrent updates never lose each other.</summary>
public sealed class RunStore(BlobContainerClient container, IRunObserver? observer = null)
{
    private const int MaxAttempts = 50;

    public BlobContainerClient Container => container;

    private static string BlobName(string runId) => $"runs/{runId}.json";

    public async Task<RunRecord?> GetAsync(string runId, CancellationToken cancellationToken = default) =>
        (await GetWithETagAsync(runId, cancellationToken))?.Record;

    /// <summary>Creates the record unless one exists; returns the stored one and whether this call created it.</summary>
    public async Task<(RunRecord Record, bool Created)> CreateAsync(RunRecord record, CancellationToken cancellationToken = default)
    {
        record.TraceId ??= System.Diagnostics.Activity.Current?.TraceId.ToHexString();
        var result = await BlobWrites.UploadAsync(container.GetBlobClient(BlobName(record.Id)),
            BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(record, BackupRelayJson.Default.RunRecord)),
            Upload(BlobWrites.IfNotExists()), cancellationToken);
        if (result.Succeeded)
        {
            observer?.Created(record);
            return (record, true);
        }

        return ((await GetAsync(record.Id, cancellationToken)) ?? throw new InvalidOperationException($"Run {record.Id} exists but cannot be read."), false);
    }

    /// <summary>
    /// Read-modify-write with If-Match, retried on a lost race. <paramref name="mutate"/> returns false
    /// to leave the record as it is. Returns the record as stored afterwards.
    /// </summary>
    public async Task<RunRecord> UpdateAsync(string runId, Func<RunRecord, bool> mutate, CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var current = await GetWithETagAsync(runId, cancellationToken) ?? throw new RunNotFoundException(runId);
            var wasFinished = current.Record.IsFinished;
            if (!mutate(current.Record))
            {
                return current.Record;
            }

            var result = await BlobWrites.UploadAsync(container.GetBlobClient(BlobName(runId)),
                BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(current.Record, BackupRelayJson.Default.RunRecord)),
                Upload(BlobWrites.IfMatch(current.ETag)), cancellationToken);
            if (result.Succeeded)
            {
                if (!wasFinished && current.Record.IsFinished && observer is not null)
                {
                    observer.Finished(current.Record);
                    await NotifyEndedAsync(current.Record);
                }

                return current.Record;
            }

            await Task.Delay(Random.Shared.Next(5, 20 + (attempt * 10)), cancellationToken);
        }

        throw new RequestFailedException(412, $"Run {runId} kept changing under {MaxAttempts} update attempts.", "ConditionNotMet", null);
    }

    /// <summary>
    /// Claims the copy of GES backup <paramref name="backupId"/> for <paramref name="runId"/>: one run
    /// copies a backup, others that adopted the same backup follow it. Returns the run that owns the copy
    /// — this one if it claimed it (or claimed it before: a redelivery), or took over a claim whose run
    /// ended without copying it, or whose run record is gone.
    /// </summary>
    public async Task<string> ClaimCopyAsync(string backupId, string runId, CancellationToken cancellationToken = default)
    {
        var claim = container.GetBlobClient($"copies/{backupId}.json");
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var created = await BlobWrites.UploadAsync(claim, BinaryData.FromString(runId), Upload(BlobWrites.IfNotExists()), cancellationToken);
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

            var ownerRun = await GetAsync(owner, cancellationToken);
            if (ownerRun is not null && (!ownerRun.IsFinished || ownerRun.Status == RunStatus.Succeeded))
            {
                return owner;
            }

            // The owner ended without a complete copy (or is gone): this run copies the backup instead.
            var taken = await BlobWrites.UploadAsync(claim, BinaryData.FromString(runId), Upload(BlobWrites.IfMatch(current.Details.ETag)), cancellationToken);
            if (taken.Succeeded)
            {
                return runId;
            }
        }

        throw new RequestFailedException(412, $"The copy claim of backup {backupId} kept changing under {MaxAttempts} attempts.", "ConditionNotMet", null);
    }

    /// <summary>Fails the run with a reason unless it has already ended.</summary>
    public Task<RunRecord> FailAsync(string runId, DateTimeOffset now, string step, string reason, CancellationToken cancellationToken = default) =>
        UpdateAsync(runId, r =>
        {
            if (r.IsFinished)
            {
                return false;
            }

            r.Fail(now, step, reason);
            r.UpdatedAt = now;
            return true;
        }, cancellationToken);

    /// <summary>
    /// Queues the notification of an ended run and marks the run, so that <see cref="SweepNotificationsAsync"/>
    /// queues again only what a crash between the two left behind (delivery is at least once).
    /// </summary>
    private async Task NotifyEndedAsync(RunRecord run)
    {
        if (observer is null || run.NotificationQueued || !await observer.QueueNotificationAsync(run))
        {
            return;
        }

        run.NotificationQueued = true;
        await UpdateAsync(run.Id, r =>
        {
            if (r.NotificationQueued)
            {
                return false;
            }

            r.NotificationQueued = true;
            return true;
        }, CancellationToken.None);
    }

    /// <summary>
    /// Ended runs whose notification was never queued (a crash in between), ended between
    /// <paramref name="grace"/> and a day ago (older ones are history, not news).
    /// </summary>
    public async Task SweepNotificationsAsync(IEnumerable<RunRecord> runs, DateTimeOffset now, TimeSpan grace)
    {
        foreach (var run in runs.Where(r => r.IsFinished && !r.NotificationQueued && r.CompletedAt is { } at && now - at > grace && now - at < TimeSpan.FromDays(1)))
        {
            await NotifyEndedAsync(run);
        }
    }

    /// <summary>Every run (newest first), optionally filtered.</summary>
    public async Task<List<RunRecord>> ListAsync(string? graphId = null, RunStatus? status = null, int limit = 50, CancellationToken cancellationToken = default)
    {
        var runs = new List<RunRecord>();
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "runs/", cancellationToken))
        {
            var runId = item.Name["runs/".Length..^".json".Length];
            RunRecord? run;
            try
            {
                run = await GetAsync(runId, cancellationToken);
            }
            catch (Exception ex) when (ex is JsonException or InvalidDataException)
            {
                // One bad record must not take the listings (health, graphs, runs, freshness) down with it.
                observer?.Unreadable(runId, ex.Message);
                continue;
            }

            if (run is not null && (graphId is null || run.GraphId == graphId) && (status is null || run.Status == status))
            {
                runs.Add(run);
            }
        }

        return [.. runs.OrderByDescending(r => r.CreatedAt).Take(limit)];
    }

    private static BlobUploadOptions Upload(BlobRequestConditions conditions) =>
        new() { Conditions = conditions, HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" } };

    private async Task<(RunRecord Record, ETag ETag)?> GetWithETagAsync(string runId, CancellationToken cancellationToken)
    {
        BlobDownloadResult blob;
        try
        {
            blob = (await container.GetBlobClient(BlobName(runId)).DownloadContentAsync(cancellationToken)).Value;
        }
        catch (RequestFailedException ex) when (StorageErrors.IsNotFound(ex))
        {
            return null;
        }

        var record = JsonSerializer.Deserialize(blob.Content.ToMemory().Span, BackupRelayJson.Default.RunRecord)
            ?? throw new InvalidDataException($"Run record {runId} is empty.");
        return (record, blob.Details.ETag);
    }
}

public sealed class RunNotFoundException(string runId) : Exception($"Run {runId} does not exist.")
{
    public string RunId { get; } = runId;
}
