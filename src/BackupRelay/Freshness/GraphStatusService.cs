using System.Collections.Concurrent;
using System.Globalization;
using Azure.Storage.Blobs.Models;
using BackupRelay.Configuration;
using BackupRelay.Runs;
using BackupRelay.Scheduling;
using BackupRelay.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Freshness;

/// <summary>
/// The freshness of every configured graph, from the run store (computed at least every minute by
/// <see cref="FreshnessMonitor"/>, and on demand): what <c>GET /api/graphs</c>, the
/// health endpoint, the last-verified-copy gauge and the stale notification read. One computation is
/// shared for <c>Http__HealthCacheDuration</c> (one listing of the run index's per-graph summaries). When a graph was first seen is
/// kept in <c>backuprelay-runs/graphs/{graphId}.json</c>, written once, so a graph that never succeeds
/// turns stale one threshold after it was configured, however often the app restarts.
/// </summary>
public sealed partial class GraphStatusService
{
    private readonly RunStore runs;
    private readonly IOptions<BackupOptions> options;
    private readonly TimeProvider time;
    private readonly ILogger<GraphStatusService> logger;

    private readonly Notifications.RunEvents? events;
    private readonly TimeSpan _cacheDuration;

    public GraphStatusService(RunStore runs, IOptions<BackupOptions> options, TimeProvider time, ILogger<GraphStatusService> logger,
        System.Diagnostics.Metrics.IMeterFactory meters, IOptions<Http.HttpOptions> http, Notifications.RunEvents? events = null)
    {
        _cacheDuration = http.Value.HealthCacheDuration;
        this.runs = runs;
        this.events = events;
        this.options = options;
        this.time = time;
        this.logger = logger;
        Telemetry.BackupRelayMetrics.AddGraphGauges(meters, this);
    }


    private readonly ConcurrentDictionary<string, DateTimeOffset> _firstSeen = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private Task<IReadOnlyList<GraphStatus>>? _current;
    private DateTimeOffset _computedAt;

    private readonly ConcurrentDictionary<string, bool> _wasStale = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _wasUnproven = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _wasTooSlow = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _wasUnverified = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _drillFailures = new(StringComparer.Ordinal);

    /// <summary>The current time (the gauges' ages).</summary>
    public DateTimeOffset Now => time.GetUtcNow();

    /// <summary>The last statuses computed, for synchronous readers (metrics); null before the first.</summary>
    public IReadOnlyList<GraphStatus>? Latest { get; private set; }

    public Task<IReadOnlyList<GraphStatus>> GetAsync()
    {
        lock (_gate)
        {
            if (_current is { } current && (!current.IsCompleted || (current.IsCompletedSuccessfully && time.GetUtcNow() - _computedAt < _cacheDuration)))
            {
                return current;
            }

            _computedAt = time.GetUtcNow();
            return _current = ComputeAsync();
        }
    }

    private async Task<IReadOnlyList<GraphStatus>> ComputeAsync()
    {
        var backup = options.Value;
        var schedule = ScheduleBackupsHandler.Parse(backup.Schedule);
        var now = time.GetUtcNow();
        var statuses = new GraphStatus[backup.Graphs.Count];

        // Every graph's newest run and newest verified copy from one listing of the run index's summaries
        // (plus the record of a newest run still going).
        var latest = await runs.LatestAsync([.. backup.Graphs.Select(g => g.GraphId)]);
        await Parallel.ForEachAsync(Enumerable.Range(0, backup.Graphs.Count), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            var graph = backup.Graphs[i];
            var firstSeen = await FirstSeenAsync(graph.GraphId, now);
            var threshold = graph.FreshnessThreshold ?? GraphFreshness.DefaultThreshold(schedule, graph.JobDeadline ?? backup.JobDeadline, now);
            statuses[i] = GraphFreshness.Evaluate(graph.GraphId, graph.Name, backup.Schedule, schedule, threshold, firstSeen, latest[graph.GraphId], now) with
            {
                Restore = await RestoreProofAsync(graph, latest[graph.GraphId], now),
            };
        });

        Latest = statuses;
        foreach (var status in statuses)
        {
            if (status.RestoreUnproven && !_wasUnproven.GetValueOrDefault(status.GraphId))
            {
                Log.TurnedUnproven(logger, status.GraphId, status.Restore.UnprovenSince, status.Restore.Reason ?? "");
                if (events is not null)
                {
                    await events.QueueRestoreUnprovenAsync(status);
                }
            }

            _wasUnproven[status.GraphId] = status.RestoreUnproven;

            if (status.RestoreTooSlow && !_wasTooSlow.GetValueOrDefault(status.GraphId))
            {
                Log.TurnedTooSlow(logger, status.GraphId, status.Restore.TooSlowSince, status.Restore.Reason ?? "");
                if (events is not null)
                {
                    await events.QueueRestoreTooSlowAsync(status);
                }
            }

            _wasTooSlow[status.GraphId] = status.RestoreTooSlow;

            var stale = status.State == FreshnessState.Stale;
            if (stale && !_wasStale.GetValueOrDefault(status.GraphId))
            {
                // Logged once per process and turn; the notification's event id (graph and stale-since) is the
                // same on every instance, so the receiver sees one event.
                Log.TurnedStale(logger, status.GraphId, status.StaleSince, status.LastVerifiedCopy?.CompletedAt);
                if (events is not null)
                {
                    await events.QueueStaleAsync(status);
                }
            }

            _wasStale[status.GraphId] = stale;

            // A newer copy that is not verified: not fresh, whatever its age (logged, alerted and notified as stale is).
            var unverified = status.UnverifiedCopy is not null;
            if (unverified && !_wasUnverified.GetValueOrDefault(status.GraphId))
            {
                Log.TurnedUnverified(logger, status.GraphId, status.UnverifiedCopy!.RunId, status.UnverifiedCopy.Level.Name());
                if (events is not null)
                {
                    await events.QueueUnverifiedAsync(status);
                }
            }

            _wasUnverified[status.GraphId] = unverified;
        }

        return statuses;
    }

    /// <summary>
    /// The graph's restore proof; when its last drill failed, the reason is read from that run's record (once:
    /// an ended run's errors do not change).
    /// </summary>
    private async Task<Drills.GraphRestoreProof> RestoreProofAsync(GraphOptions graph, List<RunIndexEntry> latest, DateTimeOffset now)
    {
        if (!graph.DrillScheduled)
        {
            return Drills.GraphRestoreProof.NotScheduled;
        }

        var since = await FirstSeenAsync(graph.GraphId, now, ".drills");
        var proof = Drills.RestoreProof.Evaluate(graph.GraphId, graph.Drill, since, latest, now);
        if (proof.FailedDrillId is not { } failed)
        {
            return proof;
        }

        if (!_drillFailures.TryGetValue(failed, out var why))
        {
            var run = await runs.GetAsync(failed);
            why = run?.Errors.LastOrDefault() is { } error ? $"the last restore drill, run {failed}, failed at {error.Step}: {error.Reason}" : proof.Reason!;
            _drillFailures[failed] = why;
        }

        return proof with { Reason = why };
    }

    /// <param name="suffix">"" for the graph itself; ".drills" for when its drills were first seen scheduled.</param>
    private async Task<DateTimeOffset> FirstSeenAsync(string graphId, DateTimeOffset now, string suffix = "")
    {
        if (_firstSeen.TryGetValue(graphId + suffix, out var known))
        {
            return known;
        }

        var blob = runs.Container.GetBlobClient($"graphs/{graphId}{suffix}.json");
        var marker = BinaryData.FromString($$"""{"graphId":"{{graphId}}","firstSeenAt":"{{now.ToString("O", CultureInfo.InvariantCulture)}}"}""");
        var written = await BlobWrites.UploadAsync(blob, marker, new BlobUploadOptions
        {
            Conditions = BlobWrites.IfNotExists(),
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" },
        });
        var firstSeen = now;
        if (!written.Succeeded)
        {
            // Another instance (or an earlier start) saw it first.
            using var existing = System.Text.Json.JsonDocument.Parse((await blob.DownloadContentAsync()).Value.Content.ToMemory());
            firstSeen = existing.RootElement.TryGetProperty("firstSeenAt", out var at) && at.TryGetDateTimeOffset(out var parsed) ? parsed : now;
        }

        return _firstSeen.GetOrAdd(graphId + suffix, firstSeen);
    }

    private static partial class Log
    {
        [LoggerMessage(80, LogLevel.Error, "Graph {GraphId} is stale: no verified copy since {LastVerified} (stale since {StaleSince})")]
        public static partial void TurnedStale(ILogger logger, string graphId, DateTimeOffset? staleSince, DateTimeOffset? lastVerified);

        [LoggerMessage(117, LogLevel.Error, "Graph {GraphId} is RestoreUnproven since {UnprovenSince}: {Reason}")]
        public static partial void TurnedUnproven(ILogger logger, string graphId, DateTimeOffset? unprovenSince, string reason);

        [LoggerMessage(123, LogLevel.Error, "Graph {GraphId} is RestoreTooSlow since {TooSlowSince}: {Reason}")]
        public static partial void TurnedTooSlow(ILogger logger, string graphId, DateTimeOffset? tooSlowSince, string reason);

        [LoggerMessage(118, LogLevel.Error, "Graph {GraphId} is Unverified: its newest copy, run {RunId}, is {CopyLevel}, never checked against its source")]
        public static partial void TurnedUnverified(ILogger logger, string graphId, string runId, string copyLevel);
    }
}
