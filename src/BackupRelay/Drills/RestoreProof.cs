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

    /// <summary>Proven, but the last passed drill took longer than the graph's restore target, or restoring its newest copy is estimated to.</summary>
    RestoreTooSlow,
}

/// <summary>A restore drill as <c>GET /api/graphs</c> shows it.</summary>
public sealed record GraphDrill(string Id, RunStatus Status, RunStep Step, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt, string? BackupId);

/// <summary>
/// The last drill that passed: when, which backup, how old its copy was when the drill took it, how long the drill took,
/// and what it moved: <see cref="Bytes"/> in <see cref="Transfer"/> (upload to OBS with the read-back), then the GES import.
/// </summary>
public sealed record ProvenRestore(string RunId, DateTimeOffset At, string? BackupId, TimeSpan? CopyAge, TimeSpan Duration, long Bytes = 0,
    TimeSpan? Transfer = null, TimeSpan? Import = null);

/// <summary>
/// How long restoring the graph's newest verified copy would take, from what the last passed drill measured: the copy's
/// bytes at the drill's transfer rate, plus the drill's import time scaled by size (never below what the drill saw).
/// </summary>
/// <param name="BackupId">The copy estimated (the newest verified one).</param>
/// <param name="BytesPerSecond">The drill's rate: its bytes over its transfer time.</param>
public sealed record RestoreEstimate(string? BackupId, long Bytes, TimeSpan Transfer, TimeSpan Import, TimeSpan Total, double BytesPerSecond, string FromDrill)
{
    /// <summary>The estimate, or null when the drill did not measure its phases (an older record) or moved nothing.</summary>
    public static RestoreEstimate? Of(ProvenRestore? drill, RunIndexEntry? copy)
    {
        if (drill is not { Transfer: { Ticks: > 0 } transfer, Import: { } import, Bytes: > 0 } || copy is null)
        {
            return null;
        }

        var rate = drill.Bytes / transfer.TotalSeconds;
        var scale = Math.Max(1, (double)copy.Bytes / drill.Bytes);
        var moving = TimeSpan.FromSeconds(copy.Bytes / rate);
        var importing = import * scale;
        return new RestoreEstimate(copy.BackupId, copy.Bytes, moving, importing, moving + importing, Math.Round(rate), drill.RunId);
    }
}

/// <summary>Whether a graph's copies are proven restorable (<c>restore</c> in <c>GET /api/graphs</c>).</summary>
/// <param name="Reason">Why the graph is <c>RestoreUnproven</c> or <c>RestoreTooSlow</c> (null otherwise).</param>
public sealed record GraphRestoreProof(
    RestoreProofState State,
    string? Schedule,
    string? TargetGraphId,
    TimeSpan? Threshold,
    DateTimeOffset? NextDrill,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] DateTimeOffset? UnprovenSince,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Reason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] GraphDrill? LastDrill,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ProvenRestore? LastProvenRestore,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] RestoreEstimate? Estimate = null,
    TimeSpan? RestoreTarget = null)
{
    public static readonly GraphRestoreProof NotScheduled = new(RestoreProofState.NotScheduled, null, null, null, null, null, null, null, null);

    /// <summary>Since when the graph is <c>RestoreTooSlow</c> (the drill that showed it, or the copy the estimate is of).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public DateTimeOffset? TooSlowSince { get; init; }

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
                passed.CompletedAt.Value - passed.CreatedAt, passed.Bytes, passed.Transfer, passed.Import);
        var newestCopy = runs.Where(r => r.GraphId == graphId && r.IsVerifiedCopy).MaxBy(r => r.CompletedAt);
        var estimate = RestoreEstimate.Of(proven, newestCopy);
        var shown = last is null ? null : new GraphDrill(last.RunId, last.Status, last.Step, last.CreatedAt, last.CompletedAt, last.BackupId);

        RestoreProofState state;
        DateTimeOffset? unprovenSince = null;
        string? reason = null;
        string? failed = null;
        DateTimeOffset? tooSlowSince = null;
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
        else if (drill.RestoreTarget is { } target && proven is not null && (proven.Duration > target || estimate?.Total > target))
        {
            state = RestoreProofState.RestoreTooSlow;
            reason = proven.Duration > target
                ? $"the last passed drill, run {proven.RunId}, took {proven.Duration:c}; the restore target is {target:c}"
                : $"restoring the newest copy ({estimate!.BackupId}, {estimate.Bytes} bytes) is estimated at {estimate.Total:c}; the restore target is {target:c}";
            tooSlowSince = proven.Duration > target || newestCopy?.CompletedAt is not { } copied ? proven.At : Max(proven.At, copied);
        }
        else
        {
            state = passed is null ? RestoreProofState.Pending : RestoreProofState.Proven;
        }

        return new GraphRestoreProof(state, drill.Schedule, drill.TargetGraphId, threshold, next, unprovenSince, reason, shown, proven, estimate,
            drill.RestoreTarget)
        {
            FailedDrillId = failed,
            TooSlowSince = tooSlowSince,
        };
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;
}
