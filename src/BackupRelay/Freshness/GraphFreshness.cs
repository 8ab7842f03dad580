using System.Text.Json.Serialization;
using BackupRelay.Runs;
using NCrontab;

namespace BackupRelay.Freshness;

[JsonConverter(typeof(JsonStringEnumConverter<FreshnessState>))]
public enum FreshnessState
{
    /// <summary>The last verified copy is younger than the threshold.</summary>
    Fresh,

    /// <summary>The last verified copy (or, for a graph that never had one, its first sighting) is older than the threshold.</summary>
    Stale,

    /// <summary>No verified copy yet, and the graph was first seen less than one threshold ago.</summary>
    NeverSucceeded,

    /// <summary>
    /// The graph's newest copy is not verified (<see cref="CopyLevel.ReceivedOnly"/>: never checked against its
    /// source), and no verified copy is newer: its copies are arriving, but none can be trusted as a verified one.
    /// </summary>
    Unverified,
}

/// <summary>The newest run of a graph, whatever its outcome.</summary>
public sealed record GraphLastRun(string Id, RunStatus Status, RunStep Step, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt);

/// <summary>The newest backup run of a graph that ended with every file copied and verified.</summary>
public sealed record GraphVerifiedCopy(string RunId, string? BackupId, DateTimeOffset CompletedAt, long Bytes, int Files);

/// <summary>A copy newer than the graph's newest verified copy that is not verified: its run, and what it proves.</summary>
public sealed record GraphUnverifiedCopy(string RunId, string? BackupId, DateTimeOffset CompletedAt, CopyLevel Level);

/// <summary>What <c>GET /api/graphs</c> says of one configured graph.</summary>
public sealed record GraphStatus(
    string GraphId,
    string? Name,
    string Schedule,
    DateTimeOffset? NextOccurrence,
    TimeSpan Threshold,
    FreshnessState State,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] DateTimeOffset? StaleSince,
    DateTimeOffset FirstSeenAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] GraphLastRun? LastRun,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] GraphVerifiedCopy? LastVerifiedCopy)
{
    /// <summary>Whether the graph's copies are proven restorable by scheduled drills (<see cref="Drills.RestoreProof"/>).</summary>
    public Drills.GraphRestoreProof Restore { get; init; } = Drills.GraphRestoreProof.NotScheduled;

    /// <summary>The graph's newest copy when it is newer than its newest verified copy and not verified (what makes it <c>Unverified</c>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public GraphUnverifiedCopy? UnverifiedCopy { get; init; }

    /// <summary>True when the graph's last drill failed or none passed within its threshold.</summary>
    public bool RestoreUnproven => Restore.State == Drills.RestoreProofState.RestoreUnproven;

    /// <summary>True when the graph's last passed drill, or the estimated restore of its newest copy, exceeds its restore target.</summary>
    public bool RestoreTooSlow => Restore.State == Drills.RestoreProofState.RestoreTooSlow;
}

/// <summary>
/// Is a graph's newest verified copy young enough? A pure function of the schedule, the graph's runs
/// and the time, so it is tested on a fake clock. Only a finished, <c>Succeeded</c> backup run whose copy is
/// <see cref="CopyLevel.Verified"/> counts: a run in progress, hung or failed, or a received-only copy, never makes
/// a graph fresh, and a received-only copy newer than every verified one makes it <see cref="FreshnessState.Unverified"/>.
/// </summary>
public static class GraphFreshness
{
    /// <summary>
    /// The default threshold: twice the schedule's interval (the gap between its next two occurrences
    /// after <paramref name="now"/>) plus the job deadline: one missed occurrence is tolerated, two are not.
    /// </summary>
    public static TimeSpan DefaultThreshold(CrontabSchedule schedule, TimeSpan jobDeadline, DateTimeOffset now)
    {
        var next = schedule.GetNextOccurrence(now.UtcDateTime);
        var after = schedule.GetNextOccurrence(next);
        return (2 * (after - next)) + jobDeadline;
    }

    public static GraphStatus Evaluate(string graphId, string? name, string scheduleText, CrontabSchedule schedule, TimeSpan threshold,
        DateTimeOffset firstSeenAt, IEnumerable<RunRecord> runs, DateTimeOffset now) =>
        Evaluate(graphId, name, scheduleText, schedule, threshold, firstSeenAt, runs.Select(RunIndexEntry.Of), now);

    /// <param name="runs">The graph's runs (others are ignored): at least its newest ones back to its newest verified copy.</param>
    public static GraphStatus Evaluate(string graphId, string? name, string scheduleText, CrontabSchedule schedule, TimeSpan threshold,
        DateTimeOffset firstSeenAt, IEnumerable<RunIndexEntry> runs, DateTimeOffset now)
    {
        var ofGraph = runs.Where(r => r.GraphId == graphId && r.Kind == RunKind.Backup).OrderByDescending(r => r.CreatedAt).ToList();
        var last = ofGraph.FirstOrDefault();
        var verified = ofGraph
            .Where(r => r.IsVerifiedCopy)
            .OrderByDescending(r => r.CompletedAt)
            .FirstOrDefault();
        var newestCopy = ofGraph.Where(r => r.IsCopy).MaxBy(r => r.CompletedAt);
        var unverified = newestCopy is { IsVerifiedCopy: false } && (verified is null || newestCopy.CompletedAt > verified.CompletedAt) ? newestCopy : null;

        // The clock for staleness starts at the newest verified copy, or when the graph was first seen.
        var since = verified?.CompletedAt ?? firstSeenAt;
        var staleAt = since + threshold;
        var state = now >= staleAt ? FreshnessState.Stale
            : unverified is not null ? FreshnessState.Unverified
            : verified is null ? FreshnessState.NeverSucceeded
            : FreshnessState.Fresh;
        return new GraphStatus(
            graphId,
            name,
            scheduleText,
            new DateTimeOffset(schedule.GetNextOccurrence(now.UtcDateTime), TimeSpan.Zero),
            threshold,
            state,
            state == FreshnessState.Stale ? staleAt : null,
            firstSeenAt,
            last is null ? null : new GraphLastRun(last.RunId, last.Status, last.Step, last.CreatedAt, last.CompletedAt),
            verified is null ? null : new GraphVerifiedCopy(verified.RunId, verified.BackupId, verified.CompletedAt!.Value, verified.Bytes, verified.Files))
        {
            UnverifiedCopy = unverified is null
                ? null
                : new GraphUnverifiedCopy(unverified.RunId, unverified.BackupId, unverified.CompletedAt!.Value, unverified.Copy ?? CopyLevel.ReceivedOnly),
        };
    }
}
