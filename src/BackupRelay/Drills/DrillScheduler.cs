using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using BackupRelay.Configuration;
using BackupRelay.Restores;
using BackupRelay.Runs;
using BackupRelay.Scheduling;
using BackupRelay.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Drills;

/// <summary>
/// Scheduled restore drills, fired by a timer every minute (the runtime runs it on one instance). For each
/// graph with a drill schedule, the schedule's latest occurrence becomes one run of kind <c>restore-drill</c>,
/// its id derived from (graph, occurrence), so a doubled tick or a second instance starts nothing twice:
/// the graph's newest verified copy is restored into the drill's target graph through the same path as
/// <c>POST /api/graphs/{id}/restores</c> (<see cref="CopyRestores"/>: same checks, same claim on the target, same
/// uploads and import), and the uploads read every object back from OBS. A graph with no verified copy yet waits
/// for one; a target held by another restore waits for it to end (each tick looks again until the next
/// occurrence). Before a graph's next drill starts, the OBS objects of its last one are deleted.
/// </summary>
public sealed partial class DrillScheduler(RunStore runs, CopyRestores restores, ObsClient obs, IOptions<BackupOptions> backup,
    IOptions<ObsOptions> obsOptions, TimeProvider time, ILogger<DrillScheduler> logger)
{
    /// <summary>The timer's schedule: every minute, so a drill starts within a minute of its occurrence.</summary>
    public const string TickSchedule = "0 * * * * *";

    /// <summary>How far back a schedule's latest occurrence is looked for (a yearly drill still finds its last one).</summary>
    private static readonly TimeSpan[] LookBack = [TimeSpan.FromHours(2), TimeSpan.FromDays(2), TimeSpan.FromDays(35), TimeSpan.FromDays(400)];

    /// <summary>Drill runs whose OBS objects are known deleted (saves a record read per tick).</summary>
    private readonly ConcurrentDictionary<string, bool> _cleaned = new(StringComparer.Ordinal);

    /// <summary>One tick: every drilled graph's pending cleanup, then its drill if one is due. Returns the runs started.</summary>
    public async Task<IReadOnlyList<string>> HandleAsync(CancellationToken cancellationToken = default)
    {
        var graphs = backup.Value.Graphs.Where(g => g.DrillScheduled).ToList();
        var started = new List<string>();
        if (graphs.Count == 0)
        {
            return started;
        }

        var latest = await runs.LatestAsync([.. graphs.Select(g => g.GraphId)], cancellationToken);
        foreach (var graph in graphs)
        {
            try
            {
                if (await DrillAsync(graph, latest[graph.GraphId], cancellationToken) is { } runId)
                {
                    started.Add(runId);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One graph's trouble does not keep the others from their drills; the next tick tries again.
                Log.TickFailed(logger, graph.GraphId, StorageErrors.Describe(ex));
            }
        }

        return started;
    }

    private async Task<string?> DrillAsync(GraphOptions graph, List<RunIndexEntry> latest, CancellationToken cancellationToken)
    {
        var drill = graph.Drill!;
        if (latest.FirstOrDefault(e => e.Kind == RunKind.RestoreDrill && e.IsFinished) is { } previous
            && !await CleanUpAsync(previous.RunId, cancellationToken))
        {
            return null;
        }

        var now = time.GetUtcNow();
        if (LatestOccurrence(drill.Schedule!, now) is not { } occurrence)
        {
            return null;
        }

        var runId = RunId(graph.GraphId, occurrence);
        if (latest.Any(e => e.RunId == runId) || await runs.GetAsync(runId, cancellationToken) is not null)
        {
            return null; // this occurrence's drill exists (a tick or an instance before this one started it)
        }

        // The newest verified copy, and the record of the run that made it (its folder in the destination).
        if (latest.FirstOrDefault(e => e.IsVerifiedCopy) is not { } copy || copy.BackupId is null)
        {
            Log.NoCopyYet(logger, graph.GraphId, occurrence);
            return null;
        }

        var settings = obsOptions.Value;
        if (!settings.IsConfigured || string.IsNullOrEmpty(settings.Bucket))
        {
            return await FailAsync(runId, graph, copy, RunStep.Checking, "Restore drills upload to OBS: set Obs__Bucket, Obs__AccessKeyId and Obs__SecretAccessKey " +
                "(or HuaweiCloud__Auth__AccessKey/SecretKey) and Obs__Endpoint or HuaweiCloud__Region.", cancellationToken);
        }

        var made = await runs.GetAsync(copy.RunId, cancellationToken);
        var folder = backup.Value.CopyFolder(graph.GraphId, made?.GraphName);
        var obsPath = $"{settings.Bucket}/{DrillPrefix(settings, drill.TargetGraphId!)}{runId}/";
        var start = await restores.StartAsync(new CopyRestoreRequest(runId, RunKind.RestoreDrill, "schedule", graph.GraphId, drill.TargetGraphId, folder,
            copy.BackupId, obsPath, AcceptUnverified: false, CopyMadeAt: copy.CompletedAt), cancellationToken);
        switch (start)
        {
            case CopyRestoreStart.Started started:
                Log.Started(logger, runId, graph.GraphId, copy.BackupId, drill.TargetGraphId!);
                return started.Run.Id;
            case CopyRestoreStart.TargetBusy busy:
                Log.TargetBusy(logger, graph.GraphId, drill.TargetGraphId!, busy.HolderRunId);
                return null;
            case CopyRestoreStart.Refused refused:
                return await FailAsync(runId, graph, copy, RunStep.Checking, refused.Reason, cancellationToken);
            default:
                throw new InvalidOperationException(start.ToString());
        }
    }

    /// <summary>A drill that could not start is a failed drill: recorded (so the graph turns RestoreUnproven), named by step and reason.</summary>
    private async Task<string> FailAsync(string runId, GraphOptions graph, RunIndexEntry copy, RunStep step, string reason, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await runs.CreateAsync(RunRecord.NewRefusedDrill(runId, graph.GraphId, graph.Drill!.TargetGraphId, copy.BackupId, copy.CompletedAt, step, now), cancellationToken);
        await runs.FailAsync(runId, now, step, reason, cancellationToken);
        Log.DrillRefused(logger, runId, graph.GraphId, reason);
        return runId;
    }

    /// <summary>
    /// Deletes what an ended drill uploaded to OBS (every object under its own path), once; true when done
    /// or nothing is left. OBS lifecycle rules on the drill prefix are the safety net (docs/operations.md).
    /// </summary>
    private async Task<bool> CleanUpAsync(string runId, CancellationToken cancellationToken)
    {
        if (_cleaned.ContainsKey(runId))
        {
            return true;
        }

        var run = await runs.GetAsync(runId, cancellationToken);
        if (run is null || run.ObsCleanedAt is not null || run.ImportPath is null)
        {
            _cleaned[runId] = true;
            return true;
        }

        if (!run.IsFinished)
        {
            return false;
        }

        try
        {
            var (bucket, prefix) = UploadToObsHandler.SplitObsPath(run.ImportPath);
            var objects = await obs.ListAsync(bucket, prefix, cancellationToken);
            foreach (var item in objects)
            {
                await obs.DeleteAsync(bucket, item.Key, cancellationToken);
            }

            var now = time.GetUtcNow();
            await runs.UpdateAsync(runId, r => r.ObsCleaned(now), cancellationToken);
            Log.CleanedUp(logger, runId, objects.Count, run.ImportPath);
            _cleaned[runId] = true;
            return true;
        }
        catch (ObsException ex)
        {
            Log.CleanupFailed(logger, runId, ex.Message);
            return false;
        }
    }

    /// <summary>Where drills upload: <c>{Obs__Prefix}drills/{target graph}/</c>, one folder per run (an OBS lifecycle rule can target it).</summary>
    public static string DrillPrefix(ObsOptions settings, string targetGraphId) => $"{settings.Prefix}drills/{targetGraphId}/";

    /// <summary>The schedule's latest occurrence at or before <paramref name="now"/>, looked for up to 400 days back; null when none.</summary>
    public static DateTimeOffset? LatestOccurrence(string schedule, DateTimeOffset now)
    {
        var cron = ScheduleBackupsHandler.Parse(schedule);
        var end = now.UtcDateTime.AddSeconds(1);
        foreach (var back in LookBack)
        {
            // A window's occurrences are enumerated from its start: the small windows keep a frequent schedule cheap.
            var last = cron.GetNextOccurrences(end - back, end).LastOrDefault();
            if (last != default)
            {
                return new DateTimeOffset(DateTime.SpecifyKind(last, DateTimeKind.Utc));
            }
        }

        return null;
    }

    /// <summary>The interval of a drill schedule (between its next two occurrences), for the default threshold.</summary>
    public static TimeSpan Interval(string schedule, DateTimeOffset now)
    {
        var cron = ScheduleBackupsHandler.Parse(schedule);
        var next = cron.GetNextOccurrence(now.UtcDateTime);
        return cron.GetNextOccurrence(next) - next;
    }

    public static string RunId(string graphId, DateTimeOffset occurrence) =>
        $"drl-{occurrence.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(graphId)))[..12]}";

    private static partial class Log
    {
        [LoggerMessage(110, LogLevel.Information, "Restore drill {RunId} started: graph {GraphId}, backup {BackupId}, into graph {TargetGraphId}")]
        public static partial void Started(ILogger logger, string runId, string graphId, string backupId, string targetGraphId);

        [LoggerMessage(111, LogLevel.Information, "The restore drill of graph {GraphId} waits: graph {TargetGraphId} is being restored by run {HolderRunId}")]
        public static partial void TargetBusy(ILogger logger, string graphId, string targetGraphId, string holderRunId);

        [LoggerMessage(112, LogLevel.Warning, "The restore drill of graph {GraphId} for {Occurrence:o} waits: the graph has no verified copy yet")]
        public static partial void NoCopyYet(ILogger logger, string graphId, DateTimeOffset occurrence);

        [LoggerMessage(113, LogLevel.Error, "Restore drill {RunId} of graph {GraphId} failed before it started: {Reason}")]
        public static partial void DrillRefused(ILogger logger, string runId, string graphId, string reason);

        [LoggerMessage(114, LogLevel.Information, "Restore drill {RunId}: deleted its {Count} objects under {ObsPath}")]
        public static partial void CleanedUp(ILogger logger, string runId, int count, string obsPath);

        [LoggerMessage(115, LogLevel.Warning, "Restore drill {RunId}: its OBS objects could not be deleted ({Error}); the next tick tries again")]
        public static partial void CleanupFailed(ILogger logger, string runId, string error);

        [LoggerMessage(116, LogLevel.Warning, "The restore drill tick of graph {GraphId} failed: {Error}; the next tick tries again")]
        public static partial void TickFailed(ILogger logger, string graphId, string error);
    }
}
