using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Azure.Storage.Blobs.Models;
using BackupRelay.Configuration;
using BackupRelay.Http;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Notifications;

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
        if (await DeliverAsync(notify, settings, cancellationToken) is not { } failure)
        {
            await BlobWrites.UploadAsync(marker, BinaryData.FromString(time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture)),
                new BlobUploadOptions { Conditions = BlobWrites.IfNotExists() }, CancellationToken.None);
            Log.Delivered(logger, notify.EventId, notify.Attempt + 1);
            return HandlerResult.Done;
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

    /// <summary>Posts the signed event to the receiver; null when it took it (2xx), else why not (never quoting the URL: it may carry a token).</summary>
    private async Task<string?> DeliverAsync(NotifyMessage notify, NotifyOptions settings, CancellationToken cancellationToken)
    {
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
            return response.IsSuccessStatusCode ? null : $"the receiver answered HTTP {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return ex is OperationCanceledException ? $"no answer within {settings.Timeout.TotalSeconds:0} s" : "the receiver could not be reached";
        }
    }

    private static partial class Log
    {
        [LoggerMessage(91, LogLevel.Information, "Notification {EventId} delivered (attempt {Attempt})")]
        public static partial void Delivered(ILogger logger, string eventId, int attempt);

        [LoggerMessage(92, LogLevel.Warning, "Notification {EventId} attempt {Attempt} failed: {Failure}; again in {Delay}")]
        public static partial void WillRetry(ILogger logger, string eventId, int attempt, string failure, TimeSpan delay);
    }
}
