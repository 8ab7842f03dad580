using BackupRelay.Configuration;
using BackupRelay.Messaging;
using BackupRelay.Scheduling;
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
                Log.ReceiveFailed(logger, function.Queue, ex.Message);
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
        var receipt = message.PopReceipt;
        using var renewal = new CancellationTokenSource();
        var renewing = RenewAsync(queue, message.MessageId, () => receipt, r => receipt = r, renewal.Token);
        try
        {
            // Base64 was decoded by the SDK; bytes that are not UTF-8 text reach the function as null and are parked.
            var text = System.Text.Unicode.Utf8.IsValid(message.Body.ToMemory().Span) ? message.Body.ToString() : null;
            var result = await invoker.InvokeAsync(function, text, message.DequeueCount, stoppingToken);
            await renewal.CancelAsync();
            await renewing;
            if (result.Outcome == HandlerOutcome.Retry)
            {
                if (message.DequeueCount >= settings.MaxDequeueCount)
                {
                    await invoker.ParkExhaustedAsync(function, text, message.DequeueCount, result.Reason, CancellationToken.None);
                    await queue.DeleteMessageAsync(message.MessageId, receipt, CancellationToken.None);
                }
                else
                {
                    await queue.UpdateMessageAsync(message.MessageId, receipt, visibilityTimeout: settings.VisibilityTimeout, cancellationToken: CancellationToken.None);
                }
            }
            else
            {
                await queue.DeleteMessageAsync(message.MessageId, receipt, CancellationToken.None);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: give the message back now instead of after its lease.
            await renewal.CancelAsync();
            await renewing;
            await ReleaseAsync(queue, message.MessageId, receipt);
        }
        catch (Exception ex)
        {
            Log.SettleFailed(logger, function.Name, ex.Message);
        }
        finally
        {
            slots.Release();
        }
    }

    private async Task ReleaseAsync(QueueClient queue, string id, string receipt)
    {
        try
        {
            await queue.UpdateMessageAsync(id, receipt, visibilityTimeout: TimeSpan.Zero, cancellationToken: CancellationToken.None);
        }
        catch (Exception ex)
        {
            Log.SettleFailed(logger, function.Name, ex.Message);
        }
    }

    /// <summary>Keeps the message hidden while a long copy slice runs.</summary>
    private async Task RenewAsync(QueueClient queue, string id, Func<string> receipt, Action<string> update, CancellationToken cancellationToken)
    {
        var every = settings.MessageLease / 2;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, time, cancellationToken);
                var renewed = await queue.UpdateMessageAsync(id, receipt(), visibilityTimeout: settings.MessageLease, cancellationToken: cancellationToken);
                update(renewed.Value.PopReceipt);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.SettleFailed(logger, function.Name, ex.Message);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(72, LogLevel.Warning, "Receiving from {Queue} failed: {Reason}")]
        public static partial void ReceiveFailed(ILogger logger, string queue, string reason);

        [LoggerMessage(73, LogLevel.Warning, "{Function}: settling a message failed: {Reason}")]
        public static partial void SettleFailed(ILogger logger, string function, string reason);
    }
}
