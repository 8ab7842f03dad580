using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
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

/// <summary>
/// Run records in blob storage, changed only with ETag conditions: concurrent updates never lose each other.
/// Listings read the <see cref="RunIndex"/>, so they cost what they return, not the history.
/// </summary>
public sealed class RunStore(BlobContainerClient container, IRunObserver? observer = null) : IRunRecords
{
    internal const int MaxAttempts = 50;

    /// <summary>Records read at once by a listing.</summary>
    private const int ReadBatch = 16;

    private readonly RunIndex _index = new(container);
    private readonly Lock _gate = new();
    private Task? _indexBuilt;

    public BlobContainerClient Container => container;

    /// <summary>Whether anyone is told of ended runs (no observer: nothing to notify, nothing to sweep).</summary>
    internal bool Notifies => observer is not null;

    public RunIndex Index => _index;

    internal static string BlobName(string runId) => $"runs/{runId}.json";

    public async Task<RunRecord?> GetAsync(string runId, CancellationToken cancellationToken = default) =>
        (await GetWithETagAsync(runId, cancellationToken))?.Record;

    /// <summary>Creates the record unless one exists; returns the stored one and whether this call created it.</summary>
    public async Task<(RunRecord Record, bool Created)> CreateAsync(RunRecord record, CancellationToken cancellationToken = default)
    {
        // Records before the index existed are indexed in the background (new ones index themselves below).
        _ = EnsureIndexAsync(CancellationToken.None);
        var result = await BlobWrites.UploadAsync(container.GetBlobClient(BlobName(record.Id)),
            BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(record, RunRecordJson.Default.RunRecord)),
            Upload(BlobWrites.IfNotExists()), cancellationToken);
        if (result.Succeeded)
        {
            await _index.WriteAsync(record, cancellationToken);
            observer?.Created(record);
            return (record, true);
        }

        // A redelivery: the crash it recovers from may have come between the record and its index entries.
        var existing = (await GetAsync(record.Id, cancellationToken)) ?? throw new InvalidOperationException($"Run {record.Id} exists but cannot be read.");
        await _index.WriteAsync(existing, cancellationToken);
        return (existing, false);
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
            var indexed = RunIndexEntry.Of(current.Record);
            if (!mutate(current.Record))
            {
                return current.Record;
            }

            var result = await BlobWrites.UploadAsync(container.GetBlobClient(BlobName(runId)),
                BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(current.Record, RunRecordJson.Default.RunRecord)),
                Upload(BlobWrites.IfMatch(current.ETag)), cancellationToken);
            if (result.Succeeded)
            {
                if (RunIndex.Changed(indexed, RunIndexEntry.Of(current.Record)))
                {
                    await _index.WriteAsync(current.Record, cancellationToken);
                }

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

    public Task<string> ClaimCopyAsync(string backupId, string runId, CancellationToken cancellationToken = default) =>
        CopyClaims.ClaimAsync(this, backupId, runId, cancellationToken);

    /// <summary>
    /// Queues the notification of an ended run and marks the run, so that <see cref="RunHousekeeping.SweepNotificationsAsync"/>
    /// queues again only what a crash between the two left behind (delivery is at least once).
    /// </summary>
    internal async Task NotifyEndedAsync(RunRecord run)
    {
        if (observer is null || run.NotificationQueued || !await observer.QueueNotificationAsync(run))
        {
            return;
        }

        run.MarkNotificationQueued();
        await UpdateAsync(run.Id, r => r.MarkNotificationQueued(), CancellationToken.None);
    }

    /// <summary>
    /// Runs newest first, optionally of one graph and one status, at most <paramref name="limit"/>: walks the
    /// index and reads only the records it returns (plus those of unfinished runs a status filter must check).
    /// </summary>
    public async Task<List<RunRecord>> ListAsync(string? graphId = null, RunStatus? status = null, int limit = 50, CancellationToken cancellationToken = default)
    {
        await EnsureIndexAsync(cancellationToken);
        var runs = new List<RunRecord>();
        var batch = new List<RunIndexEntry>(ReadBatch);
        // A status filter skips entries: bigger pages then.
        var pageSize = status is null ? (int)Math.Min(5000L, limit + 1L) : 1000;
        await foreach (var entry in _index.NewestFirstAsync(graphId, pageSize, cancellationToken))
        {
            // A finished run's status is final; an unfinished one's may have moved on since its entry was written.
            if (status is not null && entry.IsFinished && entry.Status != status)
            {
                continue;
            }

            batch.Add(entry);
            if (batch.Count == Math.Min(ReadBatch, limit - runs.Count))
            {
                await ReadBatchAsync();
                if (runs.Count >= limit)
                {
                    break;
                }
            }
        }

        await ReadBatchAsync();
        return [.. runs.Take(limit)];

        async Task ReadBatchAsync()
        {
            foreach (var run in await Task.WhenAll(batch.Select(e => ReadForListingAsync(e, cancellationToken))))
            {
                if (run is not null && (status is null || run.Status == status) && runs.Count < limit)
                {
                    runs.Add(run);
                }
            }

            batch.Clear();
        }
    }

    /// <summary>
    /// The newest runs of one graph as the index describes them, newest first, up to and including the first
    /// <paramref name="until"/> matches: an unfinished run's entry is confirmed against its record.
    /// </summary>
    public async Task<List<RunIndexEntry>> HistoryAsync(string graphId, Func<RunIndexEntry, bool> until, CancellationToken cancellationToken = default)
    {
        await EnsureIndexAsync(cancellationToken);
        var entries = new List<RunIndexEntry>();
        // A graph's newest verified copy is usually among its newest few runs.
        await foreach (var listed in _index.NewestFirstAsync(graphId, 4, cancellationToken))
        {
            var entry = listed;
            if (!entry.IsFinished)
            {
                if (await ReadForListingAsync(entry, cancellationToken) is not { } run)
                {
                    continue;
                }

                entry = RunIndexEntry.Of(run);
            }

            entries.Add(entry);
            if (until(entry))
            {
                break;
            }
        }

        return entries;
    }

    /// <summary>
    /// For each graph, its newest backup run and newest verified copy (and the restore drills the summary keeps): its summary read by name (a point read,
    /// whatever the history; a listing costs what the container holds on some stores, Azurite among them),
    /// plus the record of a newest run still unfinished (its entry may be behind). A graph without a summary
    /// (never run, or runs from before summaries) is read from its own index and summarised.
    /// </summary>
    public async Task<Dictionary<string, List<RunIndexEntry>>> LatestAsync(IReadOnlyList<string> graphIds, CancellationToken cancellationToken = default)
    {
        await EnsureIndexAsync(cancellationToken);
        var latest = new System.Collections.Concurrent.ConcurrentDictionary<string, List<RunIndexEntry>>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(graphIds.Distinct(StringComparer.Ordinal), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
            async (graphId, ct) =>
            {
                if (await _index.SummaryAsync(graphId, ct) is not { LastRun: not null } summary)
                {
                    var history = await HistoryAsync(graphId, e => e.IsVerifiedCopy, ct);
                    foreach (var entry in history)
                    {
                        await _index.UpdateSummaryAsync(entry, ct);
                    }

                    latest[graphId] = history;
                    return;
                }

                var runs = new List<RunIndexEntry>(2);
                var last = summary.LastRun;
                if (!last.IsFinished && await ReadForListingAsync(last, ct) is { } run)
                {
                    last = RunIndexEntry.Of(run);
                }

                runs.Add(last);
                // The copies, and the restore drills the summary keeps (each run once).
                foreach (var kept in new[] { summary.VerifiedCopy, summary.LastCopy, summary.LastDrill, summary.LastFinishedDrill, summary.PassedDrill })
                {
                    var entry = kept;
                    if (entry is { IsCopy: true, Copy: null } && await ReadForListingAsync(entry, ct) is { } made)
                    {
                        // Indexed before copies had a level: the record decides it (once: the summary takes the answer).
                        entry = RunIndexEntry.Of(made);
                        await _index.UpdateSummaryAsync(entry, ct);
                    }

                    if (entry is not null && !runs.Exists(r => r.RunId == entry.RunId))
                    {
                        runs.Add(entry);
                    }
                }

                latest[graphId] = runs;
            });
        return new Dictionary<string, List<RunIndexEntry>>(latest, StringComparer.Ordinal);
    }

    /// <summary>The record behind an entry; null when it is gone, or unreadable (reported, and left out).</summary>
    internal async Task<RunRecord?> ReadForListingAsync(RunIndexEntry entry, CancellationToken cancellationToken)
    {
        RunRecord? run;
        try
        {
            run = await GetAsync(entry.RunId, cancellationToken);
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException)
        {
            // One bad record must not take the listings (health, graphs, runs, freshness) down with it.
            observer?.Unreadable(entry.RunId, ex.Message);
            return null;
        }

        if (run is not null)
        {
            await _index.RepairAsync(entry, run, cancellationToken);
        }

        return run;
    }

    /// <summary>
    /// Once per process: entries for records written before the index existed (an upgrade), built once per
    /// storage account — the only pass that reads every record.
    /// </summary>
    internal Task EnsureIndexAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_indexBuilt is null || _indexBuilt.IsFaulted || _indexBuilt.IsCanceled)
            {
                _indexBuilt = BuildIndexAsync();
            }

            return _indexBuilt.WaitAsync(cancellationToken);
        }
    }

    private async Task BuildIndexAsync()
    {
        if (await _index.IsBuiltAsync())
        {
            await _index.MarkDaysOnceAsync();
            return;
        }

        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "runs/", CancellationToken.None))
        {
            var runId = item.Name["runs/".Length..^".json".Length];
            try
            {
                if (await GetAsync(runId) is { } run)
                {
                    await _index.AddIfAbsentAsync(run);
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidDataException)
            {
                observer?.Unreadable(runId, ex.Message);
            }
        }

        await _index.MarkBuiltAsync();
    }

    internal static BlobUploadOptions Upload(BlobRequestConditions conditions) =>
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

        var record = JsonSerializer.Deserialize(blob.Content.ToMemory().Span, RunRecordJson.Default.RunRecord)
            ?? throw new InvalidDataException($"Run record {runId} is empty.");
        return (record, blob.Details.ETag);
    }
}

public sealed class RunNotFoundException(string runId) : Exception($"Run {runId} does not exist.")
{
    public string RunId { get; } = runId;
}
