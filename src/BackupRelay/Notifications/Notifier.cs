using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs.Models;
using BackupRelay.Configuration;
using BackupRelay.Freshness;
using BackupRelay.Http;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Storage;
using BackupRelay.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Notifications;

/// <summary>The outgoing webhook (app settings <c>Notify__*</c>); off unless <see cref="Url"/> is set.</summary>
public sealed class NotifyOptions
{
    public const string SectionName = "Notify";

    /// <summary>Where every run end and every graph turning stale is POSTed (https, or http on loopback).</summary>
    public string? Url { get; set; }

    /// <summary>Signs each event as incoming webhooks are signed (<c>X-BackupRelay-Signature: t=…,v2=…</c>).</summary>
    public string? Secret { get; set; }

    /// <summary>Deliveries tried before the event is parked (with backoff: 2 s, 4 s, … up to 15 min apart).</summary>
    public int MaxAttempts { get; set; } = 12;

    /// <summary>How long one delivery may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public bool Enabled => !string.IsNullOrWhiteSpace(Url);
}

public sealed class NotifyOptionsValidator : IValidateOptions<NotifyOptions>
{
    public ValidateOptionsResult Validate(string? name, NotifyOptions options)
    {
        var failures = new List<string>();
        if (options.Enabled)
        {
            if (!Uri.TryCreate(options.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttps && !(url.Scheme == Uri.UriSchemeHttp && url.IsLoopback)))
            {
                failures.Add("Notify__Url must be an absolute https URL (http only on loopback).");
            }

            if (string.IsNullOrEmpty(options.Secret) || options.Secret.Length < 16)
            {
                failures.Add("Notify__Secret must be set (at least 16 characters) when Notify__Url is.");
            }
        }

        if (options.MaxAttempts is < 1 or > 50)
        {
            failures.Add("Notify__MaxAttempts must be between 1 and 50.");
        }

        if (options.Timeout <= TimeSpan.Zero || options.Timeout > TimeSpan.FromMinutes(2))
        {
            failures.Add("Notify__Timeout must be longer than zero and at most 00:02:00.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

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
                    ["kind"] = run.Kind,
                    ["graphId"] = run.GraphId,
                    ["status"] = run.Status.ToString(),
                    ["step"] = run.Step,
                    ["trigger"] = run.Trigger,
                    ["backupId"] = run.BackupId,
                    ["createdAt"] = run.CreatedAt.ToString("O", CultureInfo.InvariantCulture),
                    ["completedAt"] = run.CompletedAt?.ToString("O", CultureInfo.InvariantCulture),
                    ["files"] = run.Files.Count,
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
        var body = new JsonObject
        {
            ["id"] = eventId,
            ["type"] = "graph.stale",
            ["time"] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
            ["graph"] = new JsonObject
            {
                ["graphId"] = graph.GraphId,
                ["name"] = graph.Name,
                ["staleSince"] = graph.StaleSince?.ToString("O", CultureInfo.InvariantCulture),
                ["threshold"] = graph.Threshold.ToString("c", CultureInfo.InvariantCulture),
                ["lastVerifiedCopyAt"] = graph.LastVerifiedCopy?.CompletedAt.ToString("O", CultureInfo.InvariantCulture),
                ["lastRunId"] = graph.LastRun?.Id,
                ["lastRunStatus"] = graph.LastRun?.Status.ToString(),
            },
        };
        await queues.SendNotifyAsync(new NotifyMessage(MessageParser.CurrentVersion, eventId, body.ToJsonString()), null);
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
        var body = new JsonObject
        {
            ["id"] = eventId,
            ["type"] = "graph.restore_unproven",
            ["time"] = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
            ["graph"] = new JsonObject
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
            },
        };
        await queues.SendNotifyAsync(new NotifyMessage(MessageParser.CurrentVersion, eventId, body.ToJsonString()), null);
    }

    private static string Cap(string reason) => reason.Length <= 500 ? reason : reason[..500] + "…";

    private static partial class Log
    {
        [LoggerMessage(98, LogLevel.Error, "Run record runs/{RunId}.json cannot be read and is left out of every listing: {Reason}")]
        public static partial void UnreadableRun(ILogger logger, string runId, string reason);

        [LoggerMessage(90, LogLevel.Warning, "The notification for run {RunId} could not be queued ({Error}); it is queued again later")]
        public static partial void QueueFailed(ILogger logger, string runId, string error);
    }
}

/// <summary>
/// Delivers one notification: a signed POST, at least once; retried with backoff by re-queueing with
/// a delay, parked after <see cref="NotifyOptions.MaxAttempts"/>. A delivered event leaves a marker
/// (<c>backuprelay-runs/notifications/{id}</c>), so a redelivered message does not post it again;
/// the receiver also gets the event id (<c>X-BackupRelay-Event-Id</c> and <c>id</c>) to drop duplicates.
/// </summary>
public sealed partial class NotifyHandler(IHttpClientFactory http, WorkQueues queues, RunStore runs, IOptions<NotifyOptions> options,
    TimeProvider time, ILogger<NotifyHandler> logger) : IQueueFunction
{
    public const string HttpClientName = "notify";
    public const string EventIdHeader = "X-BackupRelay-Event-Id";

    public string Name => FunctionNames.Notify;
    public string Queue => QueueNames.Notify;

    public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        if (!MessageParser.TryParse(message, BackupRelayJson.Default.NotifyMessage, out var notify, out var reason))
        {
            return HandlerResult.Park(reason);
        }

        if (notify!.V != MessageParser.CurrentVersion || !Messaging.EventIds.IsValid(notify.EventId))
        {
            return HandlerResult.Park($"unsupported notification: version {notify.V}, the event id must be a path-safe id");
        }

        var settings = options.Value;
        if (!settings.Enabled)
        {
            // Another instance queued it with Notify__Url set (a settings change rolling out): leave it for
            // one that can deliver it; after the runtime's maxDequeueCount it is parked, visibly, not lost.
            return HandlerResult.Retry("Notify__Url is not set on this instance");
        }

        var marker = runs.Container.GetBlobClient($"notifications/{notify.EventId}");
        if (await marker.ExistsAsync(cancellationToken))
        {
            return HandlerResult.Done;
        }

        Activity.Current?.SetTag("backuprelay.event.id", notify.EventId);
        string failure;
        try
        {
            var body = Encoding.UTF8.GetBytes(notify.Event);
            using var request = new HttpRequestMessage(HttpMethod.Post, settings.Url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Add(WebhookSignature.Header, WebhookSignature.Sign(settings.Secret!, time.GetUtcNow(), "POST",
                request.RequestUri!.PathAndQuery, body));
            request.Headers.Add(EventIdHeader, notify.EventId);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(settings.Timeout);
            using var response = await http.CreateClient(HttpClientName).SendAsync(request, timeout.Token);
            if (response.IsSuccessStatusCode)
            {
                await BlobWrites.UploadAsync(marker, BinaryData.FromString(time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture)),
                    new BlobUploadOptions { Conditions = BlobWrites.IfNotExists() }, CancellationToken.None);
                Log.Delivered(logger, notify.EventId, notify.Attempt + 1);
                return HandlerResult.Done;
            }

            failure = $"the receiver answered HTTP {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // The URL is not quoted: it may carry a token.
            failure = ex is OperationCanceledException ? $"no answer within {settings.Timeout.TotalSeconds:0} s" : "the receiver could not be reached";
        }

        var attempt = notify.Attempt + 1;
        if (attempt >= settings.MaxAttempts)
        {
            return HandlerResult.Park($"notification {notify.EventId} not delivered after {attempt} attempts; last: {failure}");
        }

        var delay = TimeSpan.FromSeconds(Math.Min(Math.Pow(2, attempt), 900));
        Log.WillRetry(logger, notify.EventId, attempt, failure, delay);
        await queues.SendNotifyAsync(notify with { Attempt = attempt }, delay, cancellationToken);
        return HandlerResult.Done;
    }

    private static partial class Log
    {
        [LoggerMessage(91, LogLevel.Information, "Notification {EventId} delivered (attempt {Attempt})")]
        public static partial void Delivered(ILogger logger, string eventId, int attempt);

        [LoggerMessage(92, LogLevel.Warning, "Notification {EventId} attempt {Attempt} failed: {Failure}; again in {Delay}")]
        public static partial void WillRetry(ILogger logger, string eventId, int attempt, string failure, TimeSpan delay);
    }
}
