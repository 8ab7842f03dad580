using System.Globalization;
using System.Runtime.CompilerServices;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace BackupRelay.Runs;

/// <summary>
/// One run as its index entries describe it (blob metadata, no record read). A finished run's entry is
/// final; an unfinished one's step and status are read from the record.
/// </summary>
public sealed record RunIndexEntry(string RunId, string GraphId, string Kind, RunStatus Status, string Step, DateTimeOffset CreatedAt,
    DateTimeOffset? CompletedAt, bool Notified, string? BackupId, long Bytes, int Files)
{
    public bool IsFinished => Status is RunStatus.Succeeded or RunStatus.PartiallyFailed or RunStatus.Failed;

    public static RunIndexEntry Of(RunRecord run) =>
        new(run.Id, run.GraphId, run.Kind, run.Status, run.Step, run.CreatedAt, run.CompletedAt, run.NotificationQueued, run.BackupId,
            run.Files.Sum(f => f.Size ?? f.BytesCopied), run.Files.Count);
}

/// <summary>
/// Listings of run records that cost what they return, not the whole history: empty blobs beside the
/// records, named so that a prefix listing returns them newest first, each carrying the run's graph,
/// kind, status and times in its metadata.
/// <list type="bullet">
/// <item><c>index/all/{inverted ticks}-{run}</c>: every run, newest first (<c>GET /api/runs</c>).</item>
/// <item><c>index/graph/{graph}/{inverted ticks}-{run}</c>: one graph's runs, newest first (freshness,
/// <c>GET /api/graphs</c>, <c>?graphId=</c>).</item>
/// <item><c>index/day/{yyyyMMdd}/{run}</c>: runs by the day they were created (retention deletes whole days).</item>
/// </list>
/// Blob storage has no secondary index and Azure.Data.Tables would add a second storage service to
/// provision, grant and emulate for three small listings, so these names are the index. The record stays
/// the truth: an entry is rewritten after every change of status, and a reader that finds an entry out
/// of step with its record (a crash between the two writes) rewrites it.
/// </summary>
public sealed class RunIndex(BlobContainerClient container)
{
    private const string AllPrefix = "index/all/";
    private const string GraphPrefix = "index/graph/";
    private const string DayPrefix = "index/day/";

    /// <summary>Present once every record written before the index existed has its entries.</summary>
    private const string BuiltMarker = "index/.built-v1";

    private static string Inverted(DateTimeOffset at) => (DateTimeOffset.MaxValue.UtcTicks - at.UtcTicks).ToString("D19", CultureInfo.InvariantCulture);

    private static string AllName(string runId, DateTimeOffset createdAt) => $"{AllPrefix}{Inverted(createdAt)}-{runId}";

    private static string GraphName(string graphId, string runId, DateTimeOffset createdAt) => $"{GraphPrefix}{graphId}/{Inverted(createdAt)}-{runId}";

    private static string DayName(string runId, DateTimeOffset createdAt) => $"{DayPrefix}{createdAt.UtcDateTime:yyyyMMdd}/{runId}";

    /// <summary>Writes (or rewrites) the run's entries. Safe to repeat.</summary>
    public async Task WriteAsync(RunRecord run, CancellationToken cancellationToken = default)
    {
        var metadata = Metadata(run);
        await Task.WhenAll(
            WriteEntryAsync(AllName(run.Id, run.CreatedAt), metadata, cancellationToken),
            WriteEntryAsync(GraphName(run.GraphId, run.Id, run.CreatedAt), metadata, cancellationToken),
            WriteEntryAsync(DayName(run.Id, run.CreatedAt), metadata, cancellationToken));
    }

    /// <summary>Rewrites the entries when the record says something else than <paramref name="entry"/> (a crash between the two writes).</summary>
    public async Task RepairAsync(RunIndexEntry entry, RunRecord run, CancellationToken cancellationToken = default)
    {
        if (Changed(entry, RunIndexEntry.Of(run)))
        {
            await WriteAsync(run, cancellationToken);
        }
    }

    /// <summary>Whether a change of the record from <paramref name="before"/> to <paramref name="after"/> needs the entries rewritten.</summary>
    public static bool Changed(RunIndexEntry before, RunIndexEntry after) =>
        before.Status != after.Status || before.CompletedAt != after.CompletedAt || before.Notified != after.Notified
        || (after.IsFinished && (before.Step != after.Step || before.Bytes != after.Bytes || before.Files != after.Files || before.BackupId != after.BackupId));

    /// <summary>Entries newest first: every run's, or one graph's.</summary>
    public async IAsyncEnumerable<RunIndexEntry> NewestFirstAsync(string? graphId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var prefix = graphId is null ? AllPrefix : $"{GraphPrefix}{graphId}/";
        await foreach (var item in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix, cancellationToken))
        {
            if (Parse(item) is { } entry)
            {
                yield return entry;
            }
        }
    }

    /// <summary>The days (<c>yyyyMMdd</c>) that have runs, oldest first.</summary>
    public async IAsyncEnumerable<string> DaysAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var item in container.GetBlobsByHierarchyAsync(BlobTraits.None, BlobStates.None, "/", DayPrefix, cancellationToken))
        {
            if (item.IsPrefix)
            {
                yield return item.Prefix[DayPrefix.Length..].TrimEnd('/');
            }
        }
    }

    /// <summary>The runs created on <paramref name="day"/> (<c>yyyyMMdd</c>).</summary>
    public async IAsyncEnumerable<RunIndexEntry> OfDayAsync(string day, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var item in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, $"{DayPrefix}{day}/", cancellationToken))
        {
            if (Parse(item) is { } entry)
            {
                yield return entry;
            }
        }
    }

    /// <summary>Removes the run's entries (the day entry last, so a retention pass cut short finds the run again).</summary>
    public async Task DeleteAsync(RunIndexEntry entry, CancellationToken cancellationToken = default)
    {
        await container.GetBlobClient(AllName(entry.RunId, entry.CreatedAt)).DeleteIfExistsAsync(cancellationToken: cancellationToken);
        await container.GetBlobClient(GraphName(entry.GraphId, entry.RunId, entry.CreatedAt)).DeleteIfExistsAsync(cancellationToken: cancellationToken);
        await container.GetBlobClient(DayName(entry.RunId, entry.CreatedAt)).DeleteIfExistsAsync(cancellationToken: cancellationToken);
    }

    public async Task<bool> IsBuiltAsync(CancellationToken cancellationToken = default) =>
        (await container.GetBlobClient(BuiltMarker).ExistsAsync(cancellationToken)).Value;

    public Task MarkBuiltAsync(CancellationToken cancellationToken = default) =>
        container.GetBlobClient(BuiltMarker).UploadAsync(BinaryData.FromString("every run record has its index entries\n"), overwrite: true, cancellationToken);

    private Task WriteEntryAsync(string name, Dictionary<string, string> metadata, CancellationToken cancellationToken) =>
        container.GetBlobClient(name).UploadAsync(BinaryData.Empty, new BlobUploadOptions { Metadata = metadata }, cancellationToken);

    private static Dictionary<string, string> Metadata(RunRecord run)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["run"] = run.Id,
            ["graph"] = run.GraphId,
            ["kind"] = run.Kind,
            ["status"] = run.Status.ToString(),
            ["created"] = run.CreatedAt.UtcTicks.ToString(CultureInfo.InvariantCulture),
            ["notified"] = run.NotificationQueued ? "true" : "false",
            ["step"] = run.Step,
            ["bytes"] = run.Files.Sum(f => f.Size ?? f.BytesCopied).ToString(CultureInfo.InvariantCulture),
            ["files"] = run.Files.Count.ToString(CultureInfo.InvariantCulture),
        };
        if (run.CompletedAt is { } completed)
        {
            metadata["completed"] = completed.UtcTicks.ToString(CultureInfo.InvariantCulture);
        }

        if (run.BackupId is { } backupId)
        {
            metadata["backup"] = backupId;
        }

        return metadata;
    }

    private static RunIndexEntry? Parse(BlobItem item)
    {
        var m = item.Metadata;
        if (m is null || !m.TryGetValue("run", out var run) || !m.TryGetValue("graph", out var graph) || !m.TryGetValue("kind", out var kind)
            || !m.TryGetValue("status", out var statusText) || !Enum.TryParse<RunStatus>(statusText, out var status)
            || !m.TryGetValue("created", out var createdText) || !long.TryParse(createdText, CultureInfo.InvariantCulture, out var created))
        {
            return null;
        }

        DateTimeOffset? completedAt = m.TryGetValue("completed", out var completedText) && long.TryParse(completedText, CultureInfo.InvariantCulture, out var completed)
            ? new DateTimeOffset(completed, TimeSpan.Zero)
            : null;
        return new RunIndexEntry(run, graph, kind, status, m.TryGetValue("step", out var step) ? step : "", new DateTimeOffset(created, TimeSpan.Zero),
            completedAt, m.TryGetValue("notified", out var notified) && notified == "true", m.TryGetValue("backup", out var backup) ? backup : null,
            m.TryGetValue("bytes", out var bytesText) && long.TryParse(bytesText, CultureInfo.InvariantCulture, out var bytes) ? bytes : 0,
            m.TryGetValue("files", out var filesText) && int.TryParse(filesText, CultureInfo.InvariantCulture, out var files) ? files : 0);
    }
}
