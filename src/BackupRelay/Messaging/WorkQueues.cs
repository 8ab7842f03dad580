using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Azure.Storage.Queues;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.Runs;
using BackupRelay.Storage;

namespace BackupRelay.Messaging;

/// <summary>Sends the pipeline's messages (base64, as the Functions queue trigger expects) and parks poison ones.</summary>
public sealed class WorkQueues(StorageAccount account, TimeProvider time, Telemetry.BackupRelayMetrics? metrics = null) : IWorkSender
{
    /// <summary>Largest message the service takes, in bytes on the wire (after base64).</summary>
    public const int MaxMessageBytes = 64 * 1024;

    private readonly ConcurrentDictionary<string, Task> _created = new(StringComparer.Ordinal);

    public QueueClient Queue(string name) => account.GetQueue(name);

    /// <summary>A queue read as stored, without base64 decoding (a poison queue can hold text that never was base64).</summary>
    public QueueClient RawQueue(string name) => account.GetRawQueue(name);

    /// <summary>The app's work queues (each has its poison queue).</summary>
    public static IReadOnlyList<string> WorkQueueNames { get; } =
        [QueueNames.StartBackup, QueueNames.PollBackupJob, QueueNames.CopyBackupFile, QueueNames.PollOperation, QueueNames.Notify, QueueNames.UploadToObs];

    public static IEnumerable<string> AllQueues => WorkQueueNames.SelectMany(q => new[] { q, QueueNames.Poison(q) });

    public Task EnsureCreatedAsync(CancellationToken cancellationToken = default) =>
        Task.WhenAll(AllQueues.Select(q => CreateOnceAsync(q, cancellationToken)));

    public Task SendStartAsync(StartBackupMessage message, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.StartBackup, message, BackupRelayJson.Default.StartBackupMessage, null, cancellationToken);

    /// <summary>A start that becomes visible after <paramref name="delay"/> (a tick spreading its starts).</summary>
    public Task SendStartAsync(StartBackupMessage message, TimeSpan delay, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.StartBackup, message, BackupRelayJson.Default.StartBackupMessage, delay, cancellationToken);

    public Task SendPollAsync(PollBackupJobMessage message, TimeSpan delay, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.PollBackupJob, message, BackupRelayJson.Default.PollBackupJobMessage, delay, cancellationToken);

    public Task SendOperationPollAsync(PollOperationMessage message, TimeSpan delay, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.PollOperation, message, BackupRelayJson.Default.PollOperationMessage, delay, cancellationToken);

    public Task SendUploadAsync(RestoreUploadMessage message, TimeSpan? delay = null, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.UploadToObs, message, BackupRelayJson.Default.RestoreUploadMessage, delay, cancellationToken);

    public Task SendCopyAsync(CopyBackupFileMessage message, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.CopyBackupFile, message, BackupRelayJson.Default.CopyBackupFileMessage, null, cancellationToken);

    /// <summary>Moves a message that can never succeed to <c>&lt;queue&gt;-poison</c>, with the reason beside it.</summary>
    public async Task ParkAsync(string queue, string function, string reason, string? message, CancellationToken cancellationToken = default)
    {
        await SendTextAsync(QueueNames.Poison(queue), ParkedText(function, reason, message), null, cancellationToken);
        metrics?.Parked(queue, function); // counted once it is parked, not when parking was tried
    }

    /// <summary>
    /// The parked record, within the queue's size limit measured as sent (JSON escaping can grow a text
    /// six-fold, base64 by a third): the message's text is cut, halving, until the record fits, and the
    /// record says how long the original was.
    /// </summary>
    internal string ParkedText(string function, string reason, string? message)
    {
        reason = reason.Length > 2048 ? reason[..2048] + "…" : reason;
        var keep = message?.Length ?? 0;
        while (true)
        {
            var kept = message is null || keep >= message.Length ? message
                : message[..(keep > 0 && char.IsHighSurrogate(message[keep - 1]) ? keep - 1 : keep)];
            var parked = new ParkedMessage(function, reason, time.GetUtcNow(), kept, kept?.Length < message?.Length ? message!.Length : null);
            var text = JsonSerializer.Serialize(parked, BackupRelayJson.Default.ParkedMessage);
            if (WireBytes(text) <= MaxMessageBytes || keep == 0)
            {
                return text;
            }

            keep /= 2;
        }
    }

    private static int WireBytes(string text) => 4 * ((System.Text.Encoding.UTF8.GetByteCount(text) + 2) / 3);

    public Task SendNotifyAsync(NotifyMessage message, TimeSpan? delay, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.Notify, message, BackupRelayJson.Default.NotifyMessage, delay, cancellationToken);

    /// <summary>Serialized with the current trace context added, so the next step joins the run's trace.</summary>
    private Task SendAsync<T>(string queue, T message, JsonTypeInfo<T> type, TimeSpan? delay, CancellationToken cancellationToken)
    {
        var json = (System.Text.Json.Nodes.JsonObject)JsonSerializer.SerializeToNode(message, type)!;
        Telemetry.BackupRelayTelemetry.Inject(json);
        return SendTextAsync(queue, json.ToJsonString(), delay, cancellationToken);
    }

    internal async Task SendTextAsync(string queue, string text, TimeSpan? delay, CancellationToken cancellationToken)
    {
        // The service refuses larger messages with a bare 413; say which and how large here instead.
        var wireBytes = WireBytes(text);
        if (wireBytes > MaxMessageBytes)
        {
            throw new ArgumentException($"A message for {queue} is {wireBytes} bytes in base64; a queue message is at most {MaxMessageBytes}.", nameof(text));
        }

        await CreateOnceAsync(queue, cancellationToken);
        await account.GetQueue(queue).SendMessageAsync(text, delay > TimeSpan.Zero ? delay : null, TimeSpan.FromSeconds(-1), cancellationToken);
    }

    private Task CreateOnceAsync(string queue, CancellationToken cancellationToken)
    {
        var task = _created.GetOrAdd(queue, q => account.GetQueue(q).CreateIfNotExistsAsync(cancellationToken: cancellationToken));
        if (task.IsFaulted || task.IsCanceled)
        {
            _created.TryRemove(new KeyValuePair<string, Task>(queue, task));
        }

        return task;
    }
}

/// <summary>Message parsing shared by the queue functions: a bad message is a reason, not an exception.</summary>
public static class MessageParser
{
    public const int CurrentVersion = 1;

    /// <summary>
    /// The common start of a run-scoped queue function: parse, check version and run id, load the run.
    /// A message that can never succeed comes back as <c>Stop</c> (parked) with no run.
    /// </summary>
    public static async Task<(T? Message, RunRecord? Run, HandlerResult? Stop)> ReadRunMessageAsync<T>(string text, JsonTypeInfo<T> type,
        IRunRecords runs, CancellationToken cancellationToken)
        where T : IRunMessage
    {
        static int version(T m) => m.V;
        static string runId(T m) => m.RunId;
        if (!TryParse(text, type, out var message, out var reason))
        {
            return (default, null, HandlerResult.Park(reason));
        }

        if (version(message!) != CurrentVersion || !HuaweiCloudIds.IsValidId(runId(message!)))
        {
            return (default, null, HandlerResult.Park($"unsupported message: version {version(message!)}, the run id must be a path-safe id"));
        }

        var run = await runs.GetAsync(runId(message!), cancellationToken);
        return run is null
            ? (default, null, HandlerResult.Park($"run {runId(message!)} does not exist"))
            : (message, Tagged(run), null);
    }

    private static RunRecord Tagged(RunRecord run)
    {
        Telemetry.BackupRelayTelemetry.TagRun(run);
        return run;
    }

    /// <summary>
    /// What is read of any message before its handler parses it (the invoker, once per delivery; the poison replay): its
    /// trace context and the run it belongs to. Not JSON, or not an object: neither.
    /// </summary>
    public static (string? TraceParent, string? RunId) Envelope(string? message)
    {
        try
        {
            using var document = JsonDocument.Parse(message ?? "");
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return (null, null);
            }

            return (Text(document.RootElement, Telemetry.BackupRelayTelemetry.TraceParentProperty), Text(document.RootElement, "runId"));
        }
        catch (JsonException)
        {
            return (null, null);
        }

        static string? Text(JsonElement root, string name) =>
            root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: <= 200 } text ? text : null;
    }

    public static bool TryParse<T>(string text, JsonTypeInfo<T> type, out T? message, out string reason)
    {
        message = default;
        try
        {
            message = JsonSerializer.Deserialize(text, type);
        }
        catch (JsonException ex)
        {
            reason = $"malformed message: {ex.Message}";
            return false;
        }

        if (message is null)
        {
            reason = "empty message";
            return false;
        }

        reason = "";
        return true;
    }
}
