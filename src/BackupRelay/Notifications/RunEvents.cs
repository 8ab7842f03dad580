using System.Globalization;
using System.Text.Json.Nodes;
using BackupRelay.Freshness;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Storage;
using BackupRelay.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Notifications;

/// <summary>
/// What the run store reports: a run created or ended. Counts them (metrics) and queues the ended
/// run's notification; returns whether a notification was queued, so the store can mark the run.
/// </summary>
public sealed partial class RunEvents(BackupRelayMetrics metrics, WorkQueues queues, IOptions<NotifyOptions> options, TimeProvider time,
    ILogger<RunEvents> logger) : IRunObserver
{
    public void Created(RunRecord run) => metrics.RunStarted(run);

    public void Finished(RunRecord run) => metrics.RunFinished(run);

    public void Unreadable(string runId, string reason)
    {
        metrics.UnreadableRun();
        Log.UnreadableRun(logger, runId, reason);
    }

    public async Task<bool> QueueNotificationAsync(RunRecord run)
    {
        if (!options.Value.Enabled)
        {
            return false;
        }

        try
        {
            var eventId = $"run-{run.Id}-{run.Status}";
            var body = new JsonObject
            {
                ["id"] = eventId,
                ["type"] = "run.finished",
                ["time"] = (run.CompletedAt ?? time.GetUtcNow()).ToString("O", CultureInfo.InvariantCulture),
                ["run"] = new JsonObject
                {
                    ["id"] = run.Id,
                    ["kind"] = run.Kind.Name(),
                    ["graphId"] = run.GraphId,
                    ["status"] = run.Status.ToString(),
                    ["step"] = run.Step.Name(),
                    ["trigger"] = run.Trigger,
                    ["backupId"] = run.BackupId,
                    ["createdAt"] = run.CreatedAt.ToString("O", CultureInfo.InvariantCulture),
                    ["completedAt"] = run.CompletedAt?.ToString("O", CultureInfo.InvariantCulture),
                    ["files"] = run.Files.Count,
                    ["copy"] = run.Trust is { } trust
                        ? new JsonObject
                        {
                            ["level"] = trust.Level.Name(),
                            ["unchecked"] = new JsonArray([.. trust.Unchecked.Take(10).Select(u => (JsonNode)Cap(u))]),
                            ["missing"] = new JsonArray([.. trust.Missing.Take(10).Select(m => (JsonNode)m)]),
                        }
                        : null,
                    ["bytes"] = run.Files.Sum(f => f.BytesCopied),
                    ["errors"] = new JsonArray([.. run.Errors.TakeLast(10).Select(e => (JsonNode)new JsonObject { ["step"] = e.Step, ["reason"] = Cap(e.Reason) })]),
                },
            };
            await queues.SendNotifyAsync(new NotifyMessage(MessageParser.CurrentVersion, eventId, body.ToJsonString()), null);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The run store's sweep (graph statuses) queues it again later.
            Log.QueueFailed(logger, run.Id, StorageErrors.Describe(ex));
            return false;
        }
    }

    public async Task QueueStaleAsync(GraphStatus graph)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        var eventId = $"stale-{graph.GraphId}-{graph.StaleSince?.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}";
        await QueueGraphEventAsync(eventId, "graph.stale", new JsonObject
        {
            ["graphId"] = graph.GraphId,
            ["name"] = graph.Name,
            ["staleSince"] = graph.StaleSince?.ToString("O", CultureInfo.InvariantCulture),
            ["threshold"] = graph.Threshold.ToString("c", CultureInfo.InvariantCulture),
            ["lastVerifiedCopyAt"] = graph.LastVerifiedCopy?.CompletedAt.ToString("O", CultureInfo.InvariantCulture),
            ["lastRunId"] = graph.LastRun?.Id,
            ["lastRunStatus"] = graph.LastRun?.Status.ToString(),
        });
    }

    /// <summary>
    /// <c>graph.unverified</c>: the graph's newest copy is not verified (never checked against its source). Event id:
    /// graph and that copy's run, the same on every instance.
    /// </summary>
    public async Task QueueUnverifiedAsync(GraphStatus graph)
    {
        if (!options.Value.Enabled || graph.UnverifiedCopy is not { } copy)
        {
            return;
        }

        var eventId = $"unverified-{graph.GraphId}-{copy.RunId}";
        await QueueGraphEventAsync(eventId, "graph.unverified", new JsonObject
        {
            ["graphId"] = graph.GraphId,
            ["name"] = graph.Name,
            ["runId"] = copy.RunId,
            ["backupId"] = copy.BackupId,
            ["copyLevel"] = copy.Level.Name(),
            ["copiedAt"] = copy.CompletedAt.ToString("O", CultureInfo.InvariantCulture),
            ["lastVerifiedCopyAt"] = graph.LastVerifiedCopy?.CompletedAt.ToString("O", CultureInfo.InvariantCulture),
        });
    }

    /// <summary>
    /// <c>graph.restore_unproven</c>: the graph's last restore drill failed, or none passed within its threshold.
    /// Event id: graph and unproven-since, the same on every instance.
    /// </summary>
    public async Task QueueRestoreUnprovenAsync(GraphStatus graph)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        var proof = graph.Restore;
        var eventId = $"restore-unproven-{graph.GraphId}-{proof.UnprovenSince?.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}";
        await QueueGraphEventAsync(eventId, "graph.restore_unproven", new JsonObject
        {
            ["graphId"] = graph.GraphId,
            ["name"] = graph.Name,
            ["unprovenSince"] = proof.UnprovenSince?.ToString("O", CultureInfo.InvariantCulture),
            ["reason"] = proof.Reason is null ? null : Cap(proof.Reason),
            ["threshold"] = proof.Threshold?.ToString("c", CultureInfo.InvariantCulture),
            ["drillTargetGraphId"] = proof.TargetGraphId,
            ["lastDrillId"] = proof.LastDrill?.Id,
            ["lastDrillStatus"] = proof.LastDrill?.Status.ToString(),
            ["lastProvenRestoreAt"] = proof.LastProvenRestore?.At.ToString("O", CultureInfo.InvariantCulture),
        });
    }

    /// <summary>
    /// <c>graph.restore_too_slow</c>: the graph's last passed drill, or the estimated restore of its newest copy, exceeds
    /// its restore target. Event id: graph and too-slow-since, the same on every instance.
    /// </summary>
    public async Task QueueRestoreTooSlowAsync(GraphStatus graph)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        var proof = graph.Restore;
        var eventId = $"restore-too-slow-{graph.GraphId}-{proof.TooSlowSince?.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}";
        await QueueGraphEventAsync(eventId, "graph.restore_too_slow", new JsonObject
        {
            ["graphId"] = graph.GraphId,
            ["name"] = graph.Name,
            ["tooSlowSince"] = proof.TooSlowSince?.ToString("O", CultureInfo.InvariantCulture),
            ["reason"] = proof.Reason is null ? null : Cap(proof.Reason),
            ["restoreTarget"] = proof.RestoreTarget?.ToString("c", CultureInfo.InvariantCulture),
            ["estimatedRestore"] = proof.Estimate?.Total.ToString("c", CultureInfo.InvariantCulture),
            ["lastProvenRestoreId"] = proof.LastProvenRestore?.RunId,
            ["lastProvenRestoreDuration"] = proof.LastProvenRestore?.Duration.ToString("c", CultureInfo.InvariantCulture),
        });
    }

    private static string Cap(string reason) => reason.Length <= 500 ? reason : reason[..500] + "…";

    /// <summary>A graph event (<c>graph.stale</c>, <c>graph.unverified</c>, <c>graph.restore_unproven</c>): id, type, time and the graph's fields, queued for delivery.</summary>
    private Task QueueGraphEventAsync(string eventId, string type, JsonObject graph)
    {
        var body = new JsonObject
        {
            ["id"] = eventId,
            ["type"] = type,
            ["time"] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
            ["graph"] = graph,
        };
        return queues.SendNotifyAsync(new NotifyMessage(MessageParser.CurrentVersion, eventId, body.ToJsonString()), null);
    }

    private static partial class Log
    {
        [LoggerMessage(98, LogLevel.Error, "Run record runs/{RunId}.json cannot be read and is left out of every listing: {Reason}")]
        public static partial void UnreadableRun(ILogger logger, string runId, string reason);

        [LoggerMessage(90, LogLevel.Warning, "The notification for run {RunId} could not be queued ({Error}); it is queued again later")]
        public static partial void QueueFailed(ILogger logger, string runId, string error);
    }
}
