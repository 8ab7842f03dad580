using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.Runs;
using BackupRelay.Storage;
using BackupRelay.Storage.Queues;

namespace BackupRelay.Messaging;

/// <summary>Sends the pipeline's messages (base64, as the Functions queue trigger expects) and parks poison ones.</summary>
public sealed class WorkQueues(StorageAccount account, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Task> _created = new(StringComparer.Ordinal);

    public StorageQueue Queue(string name) => account.GetQueue(name);

    public Task EnsureCreatedAsync(CancellationToken cancellationToken = default) =>
        Task.WhenAll(new[] { QueueNames.StartBackup, QueueNames.PollBackupJob, QueueNames.CopyBackupFile, QueueNames.PollOperation }
            .SelectMany(q => new[] { q, QueueNames.Poison(q) })
            .Select(q => CreateOnceAsync(q, cancellationToken)));

    public Task SendStartAsync(StartBackupMessage message, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.StartBackup, message, BackupRelayJson.Default.StartBackupMessage, null, cancellationToken);

    public Task SendPollAsync(PollBackupJobMessage message, TimeSpan delay, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.PollBackupJob, message, BackupRelayJson.Default.PollBackupJobMessage, delay, cancellationToken);

    public Task SendOperationPollAsync(PollOperationMessage message, TimeSpan delay, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.PollOperation, message, BackupRelayJson.Default.PollOperationMessage, delay, cancellationToken);

    public Task SendCopyAsync(CopyBackupFileMessage message, CancellationToken cancellationToken = default) =>
        SendAsync(QueueNames.CopyBackupFile, message, BackupRelayJson.Default.CopyBackupFileMessage, null, cancellationToken);

    /// <summary>Moves a message that can never succeed to <c>&lt;queue&gt;-poison</c>, with the reason beside it.</summary>
    public async Task ParkAsync(string queue, string function, string reason, string? message, CancellationToken cancellationToken = default)
    {
        var parked = new ParkedMessage(function, reason, time.GetUtcNow(), message is { Length: > 16 * 1024 } ? message[..(16 * 1024)] : message);
        await CreateOnceAsync(QueueNames.Poison(queue), cancellationToken);
        await account.GetQueue(QueueNames.Poison(queue)).SendAsync(JsonSerializer.Serialize(parked, BackupRelayJson.Default.ParkedMessage),
            timeToLive: TimeSpan.FromSeconds(-1), cancellationToken: cancellationToken);
    }

    private async Task SendAsync<T>(string queue, T message, JsonTypeInfo<T> type, TimeSpan? delay, CancellationToken cancellationToken)
    {
        await CreateOnceAsync(queue, cancellationToken);
        await account.GetQueue(queue).SendAsync(JsonSerializer.Serialize(message, type), delay, TimeSpan.FromSeconds(-1), cancellationToken);
    }

    private Task CreateOnceAsync(string queue, CancellationToken cancellationToken)
    {
        var task = _created.GetOrAdd(queue, q => account.GetQueue(q).CreateIfNotExistsAsync(cancellationToken));
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
        Func<T, int> version, Func<T, string> runId, RunStore runs, CancellationToken cancellationToken)
    {
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
            : (message, run, null);
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
