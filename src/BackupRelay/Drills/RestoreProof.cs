using System.Text.Json.Serialization;
using BackupRelay.Configuration;
using BackupRelay.Runs;

namespace BackupRelay.Drills;

[JsonConverter(typeof(JsonStringEnumConverter<RestoreProofState>))]
public enum RestoreProofState
{
    /// <summary>The graph has no drill schedule: its restorability is not measured.</summary>
    NotScheduled,

    /// <summary>Drills are scheduled, none has passed yet, and they have been scheduled for less than one threshold.</summary>
    Pending,

    /// <summary>The newest finished drill passed, less than one threshold ago.</summary>
    Proven,

    /// <summary>The newest finished drill failed, or none passed within the threshold.</summary>
    RestoreUnproven,
}

/// <summary>A restore drill as <c>GET /api/graphs</c> shows it.</summary>
public sealed record GraphDrill(string Id, RunStatus Status, RunStep Step, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt, string? BackupId);

/// <summary>The last drill that passed: when, which backup, how old its copy was when the drill took it, how long the drill took.</summary>
public sealed record ProvenRestore(string RunId, DateTimeOffset At, string? BackupId, TimeSpan? CopyAge, TimeSpan Duration);

/// <summary>Whether a graph's copies are proven restorable (<c>restore</c> in <c>GET /api/graphs</c>).</summary>
/// <param name="Reason">Why the graph is <c>RestoreUnproven</c> (null otherwise).</param>
public sealed record GraphRestoreProof(
    RestoreProofState State,
    string? Schedule,
    string? TargetGraphId,
    TimeSpan? Threshold,
    DateTimeOffset? NextDrill,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] DateTimeOffset? UnprovenSince,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Reason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] GraphDrill? LastDrill,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ProvenRestore? LastProvenRestore)
{
    public static readonly GraphRestoreProof NotScheduled = new(RestoreProofState.NotScheduled, null, null, null, null, null, null, null, null);

    /// <summary>The newest finished drill failed: the run to read for why.</summary>
    [JsonIgnore]
    public string? FailedDrillId { get; init; }
}

/// <summary>
/// Is a graph proven restorable? A pure function of its drill settings, its drill runs and the time, like
/// freshness: proven while the newest finished drill passed less than <c>Drill__Threshold</c> ago (default
/// twice the drill interval); unproven as soon as a drill fails, or when no drill passed for that long.
/// </summary>
public static class RestoreProof
{
    /// <param name="drillsSince">When the graph's drills were first seen scheduled: the clock for a graph that never passed one.</param>
    /// <param name="runs">The graph's runs (others are ignored): at least its newest, newest finished and newest passed drills.</param>
    public static GraphRestoreProof Evaluate(string graphId, DrillOptions? drill, DateTimeOffset drillsSince, IEnumerable<RunIndexEntry> runs, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(drill?.Schedule))
        {
            return GraphRestoreProof.NotScheduled;
        }

        var drills = runs.Where(r => r.GraphId == graphId && r.Kind == RunKind.RestoreDrill).ToList();
        var last = drills.MaxBy(r => r.CreatedAt);
        var lastFinished = drills.Where(r => r.IsFinished).MaxBy(r => r.CompletedAt ?? r.CreatedAt);
        var passed = drills.Where(r => r.IsPassedDrill).MaxBy(r => r.CompletedAt);
        var threshold = drill.Threshold ?? 2 * DrillScheduler.Interval(drill.Schedule, now);
        var next = new DateTimeOffset(Scheduling.ScheduleBackupsHandler.Parse(drill.Schedule).GetNextOccurrence(now.UtcDateTime), TimeSpan.Zero);
        var proven = passed is null
            ? null
            : new ProvenRestore(passed.RunId, passed.CompletedAt!.Value, passed.BackupId, passed.CreatedAt - passed.CopyMadeAt,
                passed.CompletedAt.Value - passed.CreatedAt);
        var shown = last is null ? null : new GraphDrill(last.RunId, last.Status, last.Step, last.CreatedAt, last.CompletedAt, last.BackupId);

        RestoreProofState state;
        DateTimeOffset? unprovenSince = null;
        string? reason = null;
        string? failed = null;
        if (lastFinished is { IsPassedDrill: false } && (passed is null || lastFinished.CompletedAt > passed.CompletedAt))
        {
            state = RestoreProofState.RestoreUnproven;
            unprovenSince = lastFinished.CompletedAt ?? lastFinished.CreatedAt;
            failed = lastFinished.RunId;
            reason = $"the last restore drill, run {lastFinished.RunId}, ended {lastFinished.Status}";
        }
        else if (now >= (passed?.CompletedAt ?? drillsSince) + threshold)
        {
            state = RestoreProofState.RestoreUnproven;
            unprovenSince = (passed?.CompletedAt ?? drillsSince) + threshold;
            reason = passed is null
                ? $"no restore drill has passed since drills were scheduled ({drillsSince:O}); threshold {threshold}"
                : $"no restore drill has passed since {passed.CompletedAt:O}; threshold {threshold}";
        }
        else
        {
            state = passed is null ? RestoreProofState.Pending : RestoreProofState.Proven;
        }

        return new GraphRestoreProof(state, drill.Schedule, drill.TargetGraphId, threshold, next, unprovenSince, reason, shown, proven)
        {
            FailedDrillId = failed,
        };
    }
}
