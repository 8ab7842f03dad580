using BackupRelay.Configuration;
using BackupRelay.Messaging;
using BackupRelay.Scheduling;
using BackupRelay.Storage;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Hosting;

/// <summary>Standalone-host settings (<c>Standalone__*</c>).</summary>
public sealed class StandaloneOptions
{
    public const string SectionName = "Standalone";

    /// <summary>Run the schedule once at start-up (the local run uses it; keep false in production).</summary>
    public bool RunScheduleOnStartup { get; set; }

    /// <summary>Path of host.json, whose <c>extensions.queues</c> settings the listeners follow.</summary>
    public string? HostJsonPath { get; set; }

    /// <summary>Shortest wait between two receives on an empty queue (it doubles up to host.json's maxPollingInterval).</summary>
    public TimeSpan MinPollingInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How long a received message stays hidden while it is worked on (renewed every third of it): also
    /// how soon another instance takes over the messages of an instance that died.
    /// </summary>
    public TimeSpan MessageLease { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>The timer trigger of the standalone host: NCRONTAB occurrences (UTC) of <c>Backup__Schedule</c>.</summary>
public sealed partial class ScheduleTimerService(ScheduleBackupsHandler handler, IOptions<BackupOptions> backup, IOptions<StandaloneOptions> standalone,
    TimeProvider time, ILogger<ScheduleTimerService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var cron = ScheduleBackupsHandler.Parse(backup.Value.Schedule);
        if (standalone.Value.RunScheduleOnStartup)
        {
            await TickAsync(time.GetUtcNow(), stoppingToken);
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow();
            var next = new DateTimeOffset(DateTime.SpecifyKind(cron.GetNextOccurrence(now.UtcDateTime), DateTimeKind.Utc));
            Log.NextTick(logger, next);
            try
            {
                await Task.Delay(next - now, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            await TickAsync(next, stoppingToken);
        }
    }

    private async Task TickAsync(DateTimeOffset at, CancellationToken stoppingToken)
    {
        try
        {
            await handler.HandleAsync(at, stoppingToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // As in Functions: a failed timer run is not retried; the next occurrence comes.
            Log.TickFailed(logger, ex.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(70, LogLevel.Information, "Next scheduled backup at {Next:o}")]
        public static partial void NextTick(ILogger logger, DateTimeOffset next);

        [LoggerMessage(71, LogLevel.Error, "Scheduled run failed: {Reason}")]
        public static partial void TickFailed(ILogger logger, string reason);
    }
}

/// <summary>
/// A queue trigger of the standalone host, with the Functions host's rules: batches, a lease
/// (visibility) while working, retry after <c>visibilityTimeout</c>, poison after
/// <c>maxDequeueCount</c>; on shutdown, unfinished messages are released at once.
/// </summary>
public sealed partial class QueueListener(IQueueFunction function, FunctionInvoker invoker, WorkQueues queues, HostQueueOptions settings,
    StandaloneOptions standalone, TimeProvider time, ILogger<QueueListener> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var queue = queues.Queue(function.Queue);
        var idle = standalone.MinPollingInterval;
        var inFlight = new List<Task>();
        using var slots = new SemaphoreSlim(settings.BatchSize);
        while (!stoppingToken.IsCancellationRequested)
        {
            IReadOnlyList<QueueMessage> batch;
            try
            {
                var free = Math.Max(1, slots.CurrentCount);
                batch = (await queue.ReceiveMessagesAsync(Math.Min(32, free), settings.MessageLease, stoppingToken)).Value;
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception ex)
            {
                Log.ReceiveFailed(logger, function.Queue, StorageErrors.Describe(ex));
                batch = [];
            }

            if (batch.Count == 0)
            {
                try
                {
                    await Task.Delay(idle, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                idle = TimeSpan.FromTicks(Math.Min(settings.MaxPollingInterval.Ticks, idle.Ticks * 2));
                continue;
            }

            idle = standalone.MinPollingInterval;
            foreach (var message in batch)
            {
                await slots.WaitAsync(CancellationToken.None);
                inFlight.Add(ProcessAsync(queue, message, slots, stoppingToken));
            }

            inFlight.RemoveAll(t => t.IsCompleted);
        }

        await Task.WhenAll(inFlight);
    }

    private async Task ProcessAsync(QueueClient queue, QueueMessage message, SemaphoreSlim slots, CancellationToken stoppingToken)
    {
        var lease = new Lease(message.PopReceipt, message.NextVisibleOn ?? time.GetUtcNow() + settings.MessageLease);
        using var renewal = new CancellationTokenSource();
        var renewing = RenewAsync(queue, message.MessageId, lease, renewal.Token);
        try
        {
            // Base64 was decoded by the SDK; bytes that are not UTF-8 text reach the function as null and are parked.
            var text = System.Text.Unicode.Utf8.IsValid(message.Body.ToMemory().Span) ? message.Body.ToString() : null;
            HandlerResult? result = null;
            try
            {
                result = await invoker.InvokeAsync(function, text, message.DequeueCount, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // Shutting down: released below.
            }
            catch (Exception ex)
            {
                // The invocation itself failed outside the handler (parking it, failing its run): a retry.
                Log.InvokeFailed(logger, function.Name, StorageErrors.Describe(ex));
            }
            finally
            {
                // Whatever happened, stop renewing: a renewal left running would keep the message hidden forever.
                await renewal.CancelAsync();
                await renewing;
            }

            var failed = result is null || result.Outcome == HandlerOutcome.Retry;
            if (result is null && stoppingToken.IsCancellationRequested)
            {
                // Shutting down: give the message back now instead of after its lease.
                await SettleAsync("release", lease, () => queue.UpdateMessageAsync(message.MessageId, lease.Receipt,
                    visibilityTimeout: TimeSpan.Zero, cancellationToken: CancellationToken.None), retry: false);
            }
            else if (failed && message.DequeueCount >= settings.MaxDequeueCount)
            {
                // Deleted only once it is parked: a park that cannot be done leaves the message to come back.
                if (await SettleAsync("park", lease, () => invoker.ParkExhaustedAsync(function, text, message.DequeueCount,
                        result?.Reason ?? "the invocation failed", CancellationToken.None), staleMeansDone: false))
                {
                    await SettleAsync("delete", lease, () => queue.DeleteMessageAsync(message.MessageId, lease.Receipt, CancellationToken.None));
                }
            }
            else if (failed)
            {
                await SettleAsync("release", lease, () => queue.UpdateMessageAsync(message.MessageId, lease.Receipt,
                    visibilityTimeout: settings.VisibilityTimeout, cancellationToken: CancellationToken.None));
            }
            else
            {
                await SettleAsync("delete", lease, () => queue.DeleteMessageAsync(message.MessageId, lease.Receipt, CancellationToken.None));
            }
        }
        finally
        {
            slots.Release();
        }
    }

    /// <summary>The message's current pop receipt and when it becomes visible again if nobody renews it.</summary>
    private sealed class Lease(string receipt, DateTimeOffset visibleAt)
    {
        public string Receipt { get; set; } = receipt;
        public DateTimeOffset VisibleAt { get; set; } = visibleAt;
    }

    /// <summary>
    /// Settles the message (delete, release, park), retried with backoff while storage fails — a
    /// storage outage must not leave the message hidden until its lease ends — but not past the
    /// lease: then it is visible again by itself. With <paramref name="staleMeansDone"/>, a stale
    /// receipt or a message already gone means someone else owns it now: nothing to do. True when
    /// nothing is left to do.
    /// </summary>
    private async Task<bool> SettleAsync(string what, Lease lease, Func<Task> settle, bool retry = true, bool staleMeansDone = true)
    {
        var delay = TimeSpan.FromSeconds(1);
        while (true)
        {
            try
            {
                await settle();
                return true;
            }
            catch (Exception ex) when (staleMeansDone && StorageErrors.Find(ex) is { Status: 404 or 400 })
            {
                return true;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                var reason = StorageErrors.Describe(ex);
                if (!retry || time.GetUtcNow() + delay >= lease.VisibleAt)
                {
                    Log.SettleFailed(logger, function.Name, what, reason);
                    return false;
                }

                Log.SettleRetrying(logger, function.Name, what, reason, delay);
                await Task.Delay(delay, time);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    /// <summary>Keeps the message hidden while a long copy slice runs.</summary>
    private async Task RenewAsync(QueueClient queue, string id, Lease lease, CancellationToken cancellationToken)
    {
        var every = settings.MessageLease / 3;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, time, cancellationToken);
                var renewed = await queue.UpdateMessageAsync(id, lease.Receipt, visibilityTimeout: settings.MessageLease, cancellationToken: cancellationToken);
                lease.Receipt = renewed.Value.PopReceipt;
                lease.VisibleAt = renewed.Value.NextVisibleOn;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.RenewFailed(logger, function.Name, StorageErrors.Describe(ex));
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(72, LogLevel.Warning, "Receiving from {Queue} failed: {Reason}")]
        public static partial void ReceiveFailed(ILogger logger, string queue, string reason);

        [LoggerMessage(73, LogLevel.Warning, "{Function}: could not {What} a message ({Reason}); it becomes visible again when its lease ends")]
        public static partial void SettleFailed(ILogger logger, string function, string what, string reason);

        [LoggerMessage(74, LogLevel.Warning, "{Function}: could not {What} a message ({Reason}); trying again in {Delay}")]
        public static partial void SettleRetrying(ILogger logger, string function, string what, string reason, TimeSpan delay);

        [LoggerMessage(76, LogLevel.Warning, "{Function}: the invocation failed outside the handler ({Reason}); the message will be retried")]
        public static partial void InvokeFailed(ILogger logger, string function, string reason);

        [LoggerMessage(75, LogLevel.Warning, "{Function}: renewing a message's lease failed ({Reason})")]
        public static partial void RenewFailed(ILogger logger, string function, string reason);
    }
}
