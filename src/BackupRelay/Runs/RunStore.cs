using System.Text.Json;
using BackupRelay.Messaging;
using BackupRelay.Storage;
using BackupRelay.Storage.Blobs;

namespace BackupRelay.Runs;

/// <summary>Run records in blob storage, changed only with ETag conditions: concurrent updates never lose each other.</summary>
public sealed class RunStore(BlobContainer container)
{
    private const int MaxAttempts = 50;

    public BlobContainer Container => container;

    private static string BlobName(string runId) => $"runs/{runId}.json";

    public async Task<RunRecord?> GetAsync(string runId, CancellationToken cancellationToken = default) =>
        (await GetWithETagAsync(runId, cancellationToken))?.Record;

    /// <summary>Creates the record unless one exists; returns the stored one and whether this call created it.</summary>
    public async Task<(RunRecord Record, bool Created)> CreateAsync(RunRecord record, CancellationToken cancellationToken = default)
    {
        var result = await container.PutBlobAsync(BlobName(record.Id), JsonSerializer.SerializeToUtf8Bytes(record, BackupRelayJson.Default.RunRecord),
            new BlobWriteOptions { IfNotExists = true, ContentType = "application/json" }, cancellationToken);
        if (result.Succeeded)
        {
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
            if (!mutate(current.Record))
            {
                return current.Record;
            }

            var result = await container.PutBlobAsync(BlobName(runId), JsonSerializer.SerializeToUtf8Bytes(current.Record, BackupRelayJson.Default.RunRecord),
                new BlobWriteOptions { IfMatch = current.ETag, ContentType = "application/json" }, cancellationToken);
            if (result.Succeeded)
            {
                return current.Record;
            }

            await Task.Delay(Random.Shared.Next(5, 20 + (attempt * 10)), cancellationToken);
        }

        throw new StorageException(System.Net.HttpStatusCode.PreconditionFailed, "ConditionNotMet", $"Run {runId} kept changing under {MaxAttempts} update attempts.");
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

    /// <summary>Every run (newest first), optionally filtered.</summary>
    public async Task<List<RunRecord>> ListAsync(string? graphId = null, RunStatus? status = null, int limit = 50, CancellationToken cancellationToken = default)
    {
        var runs = new List<RunRecord>();
        await foreach (var item in container.ListAsync("runs/", cancellationToken))
        {
            var runId = item.Name["runs/".Length..^".json".Length];
            if (await GetAsync(runId, cancellationToken) is { } run && (graphId is null || run.GraphId == graphId) && (status is null || run.Status == status))
            {
                runs.Add(run);
            }
        }

        return [.. runs.OrderByDescending(r => r.CreatedAt).Take(limit)];
    }

    private async Task<(RunRecord Record, string ETag)?> GetWithETagAsync(string runId, CancellationToken cancellationToken)
    {
        var blob = await container.GetBlobAsync(BlobName(runId), cancellationToken);
        if (blob is null)
        {
            return null;
        }

        var record = JsonSerializer.Deserialize(blob.Content, BackupRelayJson.Default.RunRecord)
            ?? throw new InvalidDataException($"Run record {runId} is empty.");
        return (record, blob.Properties.ETag);
    }
}

public sealed class RunNotFoundException(string runId) : Exception($"Run {runId} does not exist.")
{
    public string RunId { get; } = runId;
}
