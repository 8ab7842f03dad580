using System.Globalization;

namespace BackupRelay.Runs;

/// <summary>
/// One run as its index entries describe it (blob metadata, no record read). A finished run's entry is
/// final; an unfinished one's step and status are read from the record.
/// </summary>
/// <param name="Listed">The entry's blob name and ETag when it came from a listing (a repair writes it only if unchanged since).</param>
public sealed record RunIndexEntry(string RunId, string GraphId, RunKind Kind, RunStatus Status, RunStep Step, DateTimeOffset CreatedAt,
    DateTimeOffset? CompletedAt, bool Notified, string? BackupId, long Bytes, int Files, (string Name, Azure.ETag ETag)? Listed = null,
    DateTimeOffset? CopyMadeAt = null, CopyLevel? Copy = null, TimeSpan? Transfer = null, TimeSpan? Import = null)
{
    public bool IsFinished => RunRecord.Ended(Status);

    /// <summary>
    /// A backup run whose copy is <see cref="CopyLevel.Verified"/> (every file there and checked against its source,
    /// the level its record decided): what makes a graph fresh, and the only copy a drill takes.
    /// </summary>
    public bool IsVerifiedCopy => IsCopy && Copy == CopyLevel.Verified;

    /// <summary>A backup run that ended with every file copied, whatever its copy proves (<see cref="Copy"/>).</summary>
    public bool IsCopy => Kind == RunKind.Backup && Status == RunStatus.Succeeded && CompletedAt is not null;

    /// <summary>A restore drill that passed: the copy came back byte-exact and GES imported it.</summary>
    public bool IsPassedDrill => Kind == RunKind.RestoreDrill && Status == RunStatus.Succeeded && CompletedAt is not null;

    public static RunIndexEntry Of(RunRecord run)
    {
        var (transfer, import) = run.Kind == RunKind.RestoreDrill ? DrillPhases(run) : (null, null);
        return new(run.Id, run.GraphId, run.Kind, run.Status, run.Step, run.CreatedAt, run.CompletedAt, run.NotificationQueued, run.BackupId,
            run.Files.Sum(f => f.Size ?? f.BytesCopied), run.Files.Count, CopyMadeAt: run.CopyMadeAt,
            Copy: run.Trust?.Level, Transfer: transfer, Import: import);
    }

    /// <summary>
    /// Where a finished drill's time went: moving its files (upload to OBS with the read-back, from the first file's start
    /// to the last file's end) and then the import (from there to the run's end). Null while unknown.
    /// </summary>
    private static (TimeSpan? Transfer, TimeSpan? Import) DrillPhases(RunRecord run)
    {
        var started = run.Files.Where(f => f.StartedAt is not null).Select(f => f.StartedAt!.Value).DefaultIfEmpty().Min();
        var moved = run.Files.Count > 0 && run.Files.All(f => f.CompletedAt is not null) ? run.Files.Max(f => f.CompletedAt!.Value) : (DateTimeOffset?)null;
        if (started == default || moved is null)
        {
            return (null, null);
        }

        return (moved.Value - started, run.CompletedAt is { } ended && ended >= moved ? ended - moved.Value : null);
    }
}

/// <summary>
/// A graph's newest backup run, newest verified copy and newest copy of any level, and its newest, newest finished
/// and newest passed restore drill, as the index keeps them.
/// </summary>
public sealed record GraphSummary(string GraphId, RunIndexEntry? LastRun, RunIndexEntry? VerifiedCopy, RunIndexEntry? LastDrill = null,
    RunIndexEntry? LastFinishedDrill = null, RunIndexEntry? PassedDrill = null, RunIndexEntry? LastCopy = null);

/// <summary>An index entry as blob metadata (ASCII names and values), under a prefix when one blob holds several (a graph summary).</summary>
internal static class RunIndexMetadata
{
    /// <summary>Writes <paramref name="entry"/> into blob metadata under <paramref name="prefix"/> (ASCII names and values only).</summary>
    public static void Put(Dictionary<string, string> metadata, string prefix, RunIndexEntry entry)
    {
        metadata[prefix + "run"] = entry.RunId;
        metadata[prefix + "graph"] = entry.GraphId;
        metadata[prefix + "kind"] = entry.Kind.Name();
        metadata[prefix + "status"] = entry.Status.ToString();
        metadata[prefix + "created"] = entry.CreatedAt.UtcTicks.ToString(CultureInfo.InvariantCulture);
        metadata[prefix + "notified"] = entry.Notified ? "true" : "false";
        metadata[prefix + "step"] = entry.Step.Name();
        metadata[prefix + "bytes"] = entry.Bytes.ToString(CultureInfo.InvariantCulture);
        metadata[prefix + "files"] = entry.Files.ToString(CultureInfo.InvariantCulture);
        if (entry.CompletedAt is { } completed)
        {
            metadata[prefix + "completed"] = completed.UtcTicks.ToString(CultureInfo.InvariantCulture);
        }

        if (entry.BackupId is { } backupId)
        {
            metadata[prefix + "backup"] = backupId;
        }

        if (entry.CopyMadeAt is { } copyMade)
        {
            metadata[prefix + "copymade"] = copyMade.UtcTicks.ToString(CultureInfo.InvariantCulture);
        }

        if (entry.Copy is { } copy)
        {
            metadata[prefix + "copy"] = copy.Name();
        }

        if (entry.Transfer is { } transfer)
        {
            metadata[prefix + "transfer"] = transfer.Ticks.ToString(CultureInfo.InvariantCulture);
        }

        if (entry.Import is { } import)
        {
            metadata[prefix + "import"] = import.Ticks.ToString(CultureInfo.InvariantCulture);
        }
    }

    public static RunIndexEntry? Parse(IDictionary<string, string> m, string prefix)
    {
        string? Get(string name) => m.TryGetValue(prefix + name, out var value) ? value : null;
        if (Get("run") is not { } run || Get("graph") is not { } graph || !RunNames.TryParseKind(Get("kind"), out var kind)
            || !Enum.TryParse<RunStatus>(Get("status"), out var status)
            || !long.TryParse(Get("created"), CultureInfo.InvariantCulture, out var created))
        {
            return null;
        }

        DateTimeOffset? completedAt = long.TryParse(Get("completed"), CultureInfo.InvariantCulture, out var completed)
            ? new DateTimeOffset(completed, TimeSpan.Zero)
            : null;
        // An entry without a step it names (none is written without one) says what its status implies.
        var step = RunNames.TryParseStep(Get("step"), out var named) ? named : RunRecord.Ended(status) ? RunStep.Done : RunStep.Queued;
        return new RunIndexEntry(run, graph, kind, status, step, new DateTimeOffset(created, TimeSpan.Zero), completedAt,
            Get("notified") == "true", Get("backup"),
            long.TryParse(Get("bytes"), CultureInfo.InvariantCulture, out var bytes) ? bytes : 0,
            int.TryParse(Get("files"), CultureInfo.InvariantCulture, out var files) ? files : 0,
            CopyMadeAt: long.TryParse(Get("copymade"), CultureInfo.InvariantCulture, out var copyMade) ? new DateTimeOffset(copyMade, TimeSpan.Zero) : null,
            Copy: RunNames.TryParseCopyLevel(Get("copy"), out var copy) ? copy : null,
            Transfer: long.TryParse(Get("transfer"), CultureInfo.InvariantCulture, out var transfer) ? TimeSpan.FromTicks(transfer) : null,
            Import: long.TryParse(Get("import"), CultureInfo.InvariantCulture, out var import) ? TimeSpan.FromTicks(import) : null);
    }
}
