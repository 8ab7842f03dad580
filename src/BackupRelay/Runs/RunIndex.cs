using System.Globalization;
using System.Runtime.CompilerServices;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace BackupRelay.Runs;

/// <summary>
/// Listings of run records that cost what they return, not the whole history: empty blobs beside the
/// records, named so that a prefix listing returns them newest first, each carrying the run's graph,
/// kind, status and times in its metadata.
/// <list type="bullet">
/// <item><c>index/graph/{graph}/{inverted ticks}-{run}</c>: one graph's runs, newest first (freshness,
/// <c>GET /api/graphs</c>, <c>?graphId=</c>).</item>
/// <item><c>index/day/{yyyyMMdd}/{run}</c>: runs by the day they were created: <c>GET /api/runs</c> reads the
/// newest days first (each day's entries sorted by creation), and retention deletes whole days.</item>
/// <item><c>index/days/{yyyyMMdd}</c>: one empty blob per day that has runs, so the days are one small listing
/// (at most the retention's days) rather than a listing of every entry. A listing costs what its prefix holds
/// in Azurite (it sorts every match before paging), so no listing here spans the whole history.</item>
/// <item><c>index/latest/{graph}</c>: each graph's newest backup run and newest verified copy, so the
/// freshness of every graph is one read per graph by name, whatever the history (<see cref="GraphSummary"/>).</item>
/// </list>
/// Blob storage has no secondary index and Azure.Data.Tables would add a second storage service to
/// provision, grant and emulate for three small listings, so these names are the index. The record stays
/// the truth: an entry is rewritten after every change of status, and a reader that finds an entry out
/// of step with its record (a crash between the two writes) rewrites it.
/// </summary>
public sealed class RunIndex(BlobContainerClient container)
{
    /// <summary>Entries an earlier version wrote for every run (newest first); deleted with their run, no longer written or read.</summary>
    private const string AllPrefix = "index/all/";
    private const string DaysPrefix = "index/days/";
    private const string GraphPrefix = "index/graph/";
    private const string DayPrefix = "index/day/";
    private const string LatestPrefix = "index/latest/";
    private const int MaxSummaryAttempts = 20;

    /// <summary>Present once every record written before the index existed has its entries.</summary>
    private const string BuiltMarker = "index/.built-v1";

    /// <summary>Present once every day with entries has its <c>index/days/</c> marker (indexes built before the markers get them once).</summary>
    private const string DaysMarker = "index/.built-v2-days";

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Task>> _markedDays = new(StringComparer.Ordinal);

    private static string Inverted(DateTimeOffset at) => (DateTimeOffset.MaxValue.UtcTicks - at.UtcTicks).ToString("D19", CultureInfo.InvariantCulture);

    private static string AllName(string runId, DateTimeOffset createdAt) => $"{AllPrefix}{Inverted(createdAt)}-{runId}";

    private static string GraphName(string graphId, string runId, DateTimeOffset createdAt) => $"{GraphPrefix}{graphId}/{Inverted(createdAt)}-{runId}";

    private static string DayName(string runId, DateTimeOffset createdAt) => $"{DayPrefix}{Day(createdAt)}/{runId}";

    /// <summary>Writes (or rewrites) the run's entries, and its graph's summary where it is newer. Safe to repeat.</summary>
    public Task WriteAsync(RunRecord run, CancellationToken cancellationToken = default) => WriteAsync(run, summarise: true, cancellationToken);

    /// <param name="summarise">False only to load history in bulk, summarising each graph once at the end (benchmarks).</param>
    public async Task WriteAsync(RunRecord run, bool summarise, CancellationToken cancellationToken = default)
    {
        var entry = RunIndexEntry.Of(run);
        await WriteEntriesAsync(entry, EntryNames(entry), onlyIfAbsent: false, cancellationToken);
        if (summarise)
        {
            await UpdateSummaryAsync(entry, cancellationToken);
        }
    }

    /// <summary>The blob names of a run's entries: its graph's listing and its day's.</summary>
    private static string[] EntryNames(RunIndexEntry entry) =>
        [GraphName(entry.GraphId, entry.RunId, entry.CreatedAt), DayName(entry.RunId, entry.CreatedAt)];

    /// <summary>The UTC day of <paramref name="at"/> as the index names days (<c>yyyyMMdd</c>).</summary>
    internal static string Day(DateTimeOffset at) => at.UtcDateTime.ToString("yyyyMMdd", CultureInfo.InvariantCulture);

    /// <summary>Writes <paramref name="entry"/> under <paramref name="names"/>: replacing them, or only where none exists.</summary>
    private async Task WriteEntriesAsync(RunIndexEntry entry, IEnumerable<string> names, bool onlyIfAbsent, CancellationToken cancellationToken)
    {
        await MarkDayAsync(Day(entry.CreatedAt), cancellationToken);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        RunIndexMetadata.Put(metadata, "", entry);
        await Task.WhenAll(names.Select(async name =>
        {
            try
            {
                await container.GetBlobClient(name).UploadAsync(BinaryData.Empty, new BlobUploadOptions
                {
                    Metadata = metadata,
                    Conditions = onlyIfAbsent ? new BlobRequestConditions { IfNoneMatch = Azure.ETag.All } : null,
                }, cancellationToken);
            }
            catch (Azure.RequestFailedException ex) when (onlyIfAbsent && ex.Status is 409 or 412)
            {
                // The store indexed it itself since: that entry is the newer.
            }
        }));
    }

    /// <summary>
    /// Makes <paramref name="entry"/> the graph's newest backup run and newest verified copy (a backup run), or its
    /// newest, newest finished and newest passed drill (a restore drill), where it is newer than what the summary
    /// holds (or is the same run, changed). Read-modify-write with ETag conditions: concurrent runs of one graph
    /// never lose each other's update.
    /// </summary>
    public async Task UpdateSummaryAsync(RunIndexEntry entry, CancellationToken cancellationToken = default)
    {
        if (entry.Kind is not (RunKind.Backup or RunKind.RestoreDrill))
        {
            return;
        }

        entry = entry with { Listed = null };

        var blob = container.GetBlobClient(LatestPrefix + entry.GraphId);
        for (var attempt = 0; attempt < MaxSummaryAttempts; attempt++)
        {
            // No summary yet (null): this entry starts it.
            var (current, etag) = await ReadSummaryAsync(entry.GraphId, cancellationToken);
            var was = current ?? new GraphSummary(entry.GraphId, null, null);
            var next = entry.Kind == RunKind.Backup
                ? was with
                {
                    LastRun = Newest(was.LastRun, entry),
                    VerifiedCopy = Best(was.VerifiedCopy, entry, entry.IsVerifiedCopy),
                    LastCopy = Best(was.LastCopy, entry, entry.IsCopy),
                }
                : was with
                {
                    LastDrill = Newest(was.LastDrill, entry),
                    LastFinishedDrill = entry.IsFinished ? Newest(was.LastFinishedDrill, entry) : was.LastFinishedDrill,
                    PassedDrill = Best(was.PassedDrill, entry, entry.IsPassedDrill),
                };
            if (current is not null && next == current)
            {
                return;
            }

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (prefix, slot) in new[] { ("l_", next.LastRun), ("v_", next.VerifiedCopy), ("d_", next.LastDrill), ("f_", next.LastFinishedDrill), ("p_", next.PassedDrill), ("c_", next.LastCopy) })
            {
                if (slot is not null)
                {
                    RunIndexMetadata.Put(metadata, prefix, slot);
                }
            }

            try
            {
                await blob.UploadAsync(BinaryData.Empty, new BlobUploadOptions
                {
                    Metadata = metadata,
                    Conditions = etag is { } match ? new BlobRequestConditions { IfMatch = match } : new BlobRequestConditions { IfNoneMatch = Azure.ETag.All },
                }, cancellationToken);
                return;
            }
            catch (Azure.RequestFailedException ex) when (ex.Status is 409 or 412)
            {
                // Another run of this graph changed the summary first: read it again.
            }
        }

        throw new Azure.RequestFailedException(412, $"The summary of graph {entry.GraphId} kept changing under {MaxSummaryAttempts} attempts.", "ConditionNotMet", null);

        // The newest run: a newer one replaces it; the same run replaces itself only forwards (an ended run never goes back to running).
        static RunIndexEntry Newest(RunIndexEntry? slot, RunIndexEntry entry) =>
            slot is null || entry.CreatedAt > slot.CreatedAt || (entry.RunId == slot.RunId && (entry.IsFinished || !slot.IsFinished)) ? entry : slot;

        // The newest run that qualifies (a verified copy, a passed drill), by when it ended.
        static RunIndexEntry? Best(RunIndexEntry? slot, RunIndexEntry entry, bool qualifies) =>
            qualifies && (slot is null || entry.RunId == slot.RunId || entry.CompletedAt > slot.CompletedAt) ? entry : slot;
    }

    /// <summary>One graph's summary, read by name (null when the graph has none yet).</summary>
    public async Task<GraphSummary?> SummaryAsync(string graphId, CancellationToken cancellationToken = default) =>
        (await ReadSummaryAsync(graphId, cancellationToken)).Summary;

    private async Task<(GraphSummary? Summary, Azure.ETag? ETag)> ReadSummaryAsync(string graphId, CancellationToken cancellationToken)
    {
        try
        {
            var properties = (await container.GetBlobClient(LatestPrefix + graphId).GetPropertiesAsync(cancellationToken: cancellationToken)).Value;
            return (Summary(graphId, properties.Metadata), properties.ETag);
        }
        catch (Azure.RequestFailedException ex) when (Storage.StorageErrors.IsNotFound(ex))
        {
            return (null, null);
        }
    }

    /// <summary>Every graph's summary, in one listing (retention: graphs no longer configured count too).</summary>
    public async Task<Dictionary<string, GraphSummary>> SummariesAsync(CancellationToken cancellationToken = default)
    {
        var summaries = new Dictionary<string, GraphSummary>(StringComparer.Ordinal);
        await foreach (var item in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, LatestPrefix, cancellationToken))
        {
            var graphId = item.Name[LatestPrefix.Length..];
            summaries[graphId] = Summary(graphId, item.Metadata);
        }

        return summaries;
    }

    private static GraphSummary Summary(string graphId, IDictionary<string, string>? metadata) => metadata is null
        ? new(graphId, null, null)
        : new(graphId, RunIndexMetadata.Parse(metadata, "l_"), RunIndexMetadata.Parse(metadata, "v_"), RunIndexMetadata.Parse(metadata, "d_"),
            RunIndexMetadata.Parse(metadata, "f_"), RunIndexMetadata.Parse(metadata, "p_"), RunIndexMetadata.Parse(metadata, "c_"));

    /// <summary>
    /// Rewrites the entries when the record says something else than the listed <paramref name="entry"/> (a crash
    /// between the two writes). The listed entry is written only if it has not changed since it was listed: a
    /// reader holding an older record than the store's latest write never turns the index back.
    /// </summary>
    public async Task RepairAsync(RunIndexEntry entry, RunRecord run, CancellationToken cancellationToken = default)
    {
        var current = RunIndexEntry.Of(run);
        if (entry.Listed is not { } listed || !Changed(entry, current))
        {
            return;
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        RunIndexMetadata.Put(metadata, "", current);
        try
        {
            await container.GetBlobClient(listed.Name).UploadAsync(BinaryData.Empty,
                new BlobUploadOptions { Metadata = metadata, Conditions = new BlobRequestConditions { IfMatch = listed.ETag } }, cancellationToken);
        }
        catch (Azure.RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            return;
        }

        await WriteEntriesAsync(current, EntryNames(current).Where(name => name != listed.Name), onlyIfAbsent: false, cancellationToken);
        await UpdateSummaryAsync(current, cancellationToken);
    }

    /// <summary>Entries for a record written before the index existed: created only where none exists (the store's own are newer).</summary>
    public async Task AddIfAbsentAsync(RunRecord run, CancellationToken cancellationToken = default)
    {
        var entry = RunIndexEntry.Of(run);
        await WriteEntriesAsync(entry, EntryNames(entry), onlyIfAbsent: true, cancellationToken);
        await UpdateSummaryAsync(entry, cancellationToken);
    }

    /// <summary>Whether a change of the record from <paramref name="before"/> to <paramref name="after"/> needs the entries rewritten.</summary>
    public static bool Changed(RunIndexEntry before, RunIndexEntry after) =>
        before.Status != after.Status || before.CompletedAt != after.CompletedAt || before.Notified != after.Notified
        || (after.IsFinished && (before.Step != after.Step || before.Bytes != after.Bytes || before.Files != after.Files || before.BackupId != after.BackupId
            || before.Transfer != after.Transfer || before.Import != after.Import));

    /// <summary>
    /// Writes the marker of a day that has runs, once per day and process: the writers of one day share one
    /// request. An empty blob written over itself, so repeating it (another process, a retry) changes nothing.
    /// </summary>
    private async Task MarkDayAsync(string day, CancellationToken cancellationToken)
    {
        var marking = _markedDays.GetOrAdd(day, d => new Lazy<Task>(() => container.GetBlobClient(DaysPrefix + d).UploadAsync(BinaryData.Empty, overwrite: true)));
        try
        {
            await marking.Value.WaitAsync(cancellationToken);
        }
        catch (Exception) when (marking.Value.IsFaulted || marking.Value.IsCanceled)
        {
            // The shared request failed (not merely this writer's wait): the next writer of the day tries again.
            _markedDays.TryRemove(new KeyValuePair<string, Lazy<Task>>(day, marking));
            throw;
        }
    }

    /// <summary>The days (<c>yyyyMMdd</c>) that have runs, oldest first: one listing of the day markers.</summary>
    public async Task<List<string>> DaysWithRunsAsync(CancellationToken cancellationToken = default)
    {
        var days = new List<string>();
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, DaysPrefix, cancellationToken))
        {
            days.Add(item.Name[DaysPrefix.Length..]);
        }

        return days;
    }

    /// <summary>A day retention emptied: its marker goes, so listings no longer visit it.</summary>
    public async Task UnmarkDayAsync(string day, CancellationToken cancellationToken = default)
    {
        _markedDays.TryRemove(day, out _);
        await container.GetBlobClient(DaysPrefix + day).DeleteIfExistsAsync(cancellationToken: cancellationToken);
    }

    /// <summary>Every run newest first: the newest days first, each day's entries sorted by creation (then run id).</summary>
    private async IAsyncEnumerable<RunIndexEntry> EveryRunNewestFirstAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var days = await DaysWithRunsAsync(cancellationToken);
        for (var i = days.Count - 1; i >= 0; i--)
        {
            var entries = new List<RunIndexEntry>();
            await foreach (var entry in OfDayAsync(days[i], cancellationToken))
            {
                entries.Add(entry);
            }

            foreach (var entry in entries.OrderByDescending(e => e.CreatedAt).ThenBy(e => e.RunId, StringComparer.Ordinal))
            {
                yield return entry;
            }
        }
    }

    /// <summary>
    /// Entries newest first: every run's, or one graph's, listed <paramref name="pageSize"/> at a time (a reader
    /// that wants the newest few does not pay for a 5,000-entry page).
    /// </summary>
    public IAsyncEnumerable<RunIndexEntry> NewestFirstAsync(string? graphId, int pageSize = 5000, CancellationToken cancellationToken = default) =>
        graphId is null ? EveryRunNewestFirstAsync(cancellationToken) : EntriesAsync($"{GraphPrefix}{graphId}/", pageSize, cancellationToken);

    /// <summary>The entries under <paramref name="prefix"/>, in name order, <paramref name="pageSize"/> per listing.</summary>
    private async IAsyncEnumerable<RunIndexEntry> EntriesAsync(string prefix, int pageSize, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var page in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix, cancellationToken)
                           .AsPages(pageSizeHint: Math.Clamp(pageSize, 1, 5000)))
        {
            foreach (var item in page.Values)
            {
                if (item.Metadata is { } metadata && RunIndexMetadata.Parse(metadata, "") is { } entry)
                {
                    yield return entry with { Listed = (item.Name, item.Properties.ETag!.Value) };
                }
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
    public IAsyncEnumerable<RunIndexEntry> OfDayAsync(string day, CancellationToken cancellationToken = default) =>
        EntriesAsync($"{DayPrefix}{day}/", 5000, cancellationToken);

    /// <summary>Removes the run's entries (the day entry last, so a retention pass cut short finds the run again).</summary>
    public async Task DeleteAsync(RunIndexEntry entry, CancellationToken cancellationToken = default)
    {
        foreach (var name in EntryNames(entry).Prepend(AllName(entry.RunId, entry.CreatedAt)))
        {
            await container.GetBlobClient(name).DeleteIfExistsAsync(cancellationToken: cancellationToken);
        }
    }

    public async Task<bool> IsBuiltAsync(CancellationToken cancellationToken = default) =>
        (await container.GetBlobClient(BuiltMarker).ExistsAsync(cancellationToken)).Value;

    public async Task MarkBuiltAsync(CancellationToken cancellationToken = default)
    {
        await container.GetBlobClient(BuiltMarker).UploadAsync(BinaryData.FromString("every run record has its index entries\n"), overwrite: true, cancellationToken);
        await MarkDaysMarkedAsync(cancellationToken);
    }

    private Task MarkDaysMarkedAsync(CancellationToken cancellationToken) =>
        container.GetBlobClient(DaysMarker).UploadAsync(BinaryData.FromString("every day with runs has its marker\n"), overwrite: true, cancellationToken);

    /// <summary>
    /// An index built before the day markers gets them once: one listing of the days its entries name (every entry
    /// matches it, so it is done once, not per request).
    /// </summary>
    public async Task MarkDaysOnceAsync(CancellationToken cancellationToken = default)
    {
        if ((await container.GetBlobClient(DaysMarker).ExistsAsync(cancellationToken)).Value)
        {
            return;
        }

        await foreach (var day in DaysAsync(cancellationToken))
        {
            await MarkDayAsync(day, cancellationToken);
        }

        await MarkDaysMarkedAsync(cancellationToken);
    }
}
