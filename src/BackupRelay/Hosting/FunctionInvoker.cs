using System.Diagnostics;
using BackupRelay.Telemetry;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Hosting;

/// <summary>
/// Runs a queue function under the Functions runtime: exceptions become "retry", parked messages go to the
/// poison queue with their reason. The runtime applies the delivery limit on top; a message that will
/// not be delivered again (parked, or failing its last allowed delivery) fails its run, so no run
/// waits forever on a message that is gone.
/// </summary>
public sealed partial class FunctionInvoker(WorkQueues queues, RunStore runs, HostJson limits,
    TimeProvider time, ILogger<FunctionInvoker> logger, BackupRelayMetrics? metrics = null)
{
    /// <summary>
    /// One step of a run, as a span in the run's trace: the parent is the trace context the message
    /// carries (<see cref="BackupRelayTelemetry.TraceParentProperty"/>), never the host's invocation
    /// request, so every hop of a run is one trace.
    /// </summary>
    public async Task<HandlerResult> InvokeAsync(QueueInvocation invocation, string? message, CancellationToken cancellationToken)
    {
        var (function, name, dequeueCount) = (invocation.Function, invocation.Name, invocation.DequeueCount);
        var (traceParent, runId) = MessageParser.Envelope(message);
        var previous = Activity.Current;
        Activity.Current = null;
        using var span = BackupRelayTelemetry.Source.StartActivity(name, ActivityKind.Consumer, BackupRelayTelemetry.Extract(traceParent));
        span?.SetTag(BackupRelayTelemetry.Function, name);
        span?.SetTag(BackupRelayTelemetry.Delivery, dequeueCount);
        span?.SetTag("messaging.destination.name", function.Queue);
        if (runId is not null)
        {
            span?.SetTag(BackupRelayTelemetry.RunId, runId);
        }

        try
        {
            var result = await InvokeCoreAsync(invocation, message, runId, cancellationToken);
            span?.SetTag("backuprelay.outcome", result.Outcome.ToString());
            if (result.Outcome != HandlerOutcome.Done)
            {
                span?.SetStatus(ActivityStatusCode.Error, result.Reason);
            }

            return result;
        }
        finally
        {
            span?.Dispose();
            Activity.Current = previous;
        }
    }

    /// <summary>
    /// A queue trigger's invocation as the Functions runtime sees it: returns when the message is done
    /// (handled, or parked here with its reason), throws <see cref="RetryLaterException"/> when it should
    /// come back — the runtime then makes it visible again after <c>visibilityTimeout</c> and, after
    /// <c>maxDequeueCount</c> deliveries, moves it to <c>&lt;queue&gt;-poison</c> itself.
    /// </summary>
    /// <param name="function">The function's work (its handler, injected by type).</param>
    /// <param name="name">The function's name as the runtime gives it (<c>FunctionContext.FunctionDefinition.Name</c>): the
    /// <c>[Function]</c> attribute is the one place it is written.</param>
    public async Task RunAsync(IQueueFunction function, string name, string? message, long dequeueCount, CancellationToken cancellationToken = default)
    {
        var result = await InvokeAsync(new QueueInvocation(function, name, dequeueCount), message, cancellationToken);
        if (result.Outcome != HandlerOutcome.Retry)
        {
            return;
        }

        if (dequeueCount >= limits.MaxDequeueCount)
        {
            // The runtime moves the message to the poison queue after this failure.
            metrics?.Parked(function.Queue, name);
        }

        throw new RetryLaterException($"{name} will retry (delivery {dequeueCount}): {result.Reason}");
    }

    private async Task<HandlerResult> InvokeCoreAsync(QueueInvocation invocation, string? message, string? runId, CancellationToken cancellationToken)
    {
        var (function, name, dequeueCount) = (invocation.Function, invocation.Name, invocation.DequeueCount);
        HandlerResult result;
        var threw = false;
        if (message is null)
        {
            result = HandlerResult.Park("the message is not valid text in the queue's encoding");
        }
        else
        {
            try
            {
                result = await function.HandleAsync(message, dequeueCount, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The runtime cancels at functionTimeout, on scale-in and on shutdown. On the message's last delivery
                // that is its last failure: nothing will deliver it again, so its run fails now (the cancellation still
                // ends the invocation, and the runtime moves the message to the poison queue).
                if (dequeueCount >= limits.MaxDequeueCount)
                {
                    Log.LastDeliveryCancelled(logger, name, dequeueCount);
                    await FailRunAsync(name, runId,
                        $"its {name} message's last delivery ({dequeueCount} of {limits.MaxDequeueCount}) was cancelled (functionTimeout, scale-in or shutdown) and goes to {QueueNames.Poison(function.Queue)}");
                }

                throw;
            }
            catch (Exception ex)
            {
                Log.Failed(logger, name, dequeueCount, ex.GetType().Name, ex.Message);
                threw = true;
                result = HandlerResult.Retry($"{ex.GetType().Name}: {ex.Message}");
            }
        }

        if (result.Outcome == HandlerOutcome.Park)
        {
            await queues.ParkAsync(function.Queue, name, result.Reason ?? "parked", message, cancellationToken);
            Log.Parked(logger, name, result.Reason ?? "");
            await FailRunAsync(name, runId, $"its {name} message was parked in {QueueNames.Poison(function.Queue)}: {result.Reason}");
        }
        else if (result.Outcome == HandlerOutcome.Retry && dequeueCount < limits.MaxDequeueCount)
        {
            // The Functions host drops a failed invocation's Logs: the reason goes to the handler's own logs
            // (and telemetry); an exception was logged where it was caught.
            if (!threw)
            {
                Log.WillRetry(logger, name, dequeueCount, result.Reason ?? "");
            }
        }
        else if (result.Outcome == HandlerOutcome.Retry)
        {
            // The last allowed delivery: the runtime now moves the message to the poison queue.
            Log.LastDeliveryFailed(logger, name, dequeueCount, result.Reason ?? "");
            await FailRunAsync(name, runId, $"its {name} message failed {dequeueCount} deliveries and goes to {QueueNames.Poison(function.Queue)}; last: {result.Reason}");
        }

        return result;
    }

    /// <summary>Best effort: the run named by the message, if there is one and it has not ended, fails with the reason.</summary>
    private async Task FailRunAsync(string name, string? runId, string reason)
    {
        if (!HuaweiCloudIds.IsValidId(runId) || await runs.GetAsync(runId!, CancellationToken.None) is not { IsFinished: false })
        {
            return;
        }

        try
        {
            await runs.FailAsync(runId!, time.GetUtcNow(), name, reason, CancellationToken.None);
            Log.RunFailed(logger, runId!, name);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.RunFailFailed(logger, runId!, ex.GetType().Name);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(60, LogLevel.Warning, "{Function} failed (delivery {DequeueCount}): {Error}: {Message}")]
        public static partial void Failed(ILogger logger, string function, long dequeueCount, string error, string message);

        [LoggerMessage(61, LogLevel.Error, "{Function}: message parked in the poison queue: {Reason}")]
        public static partial void Parked(ILogger logger, string function, string reason);

        [LoggerMessage(62, LogLevel.Error, "{Function} failed its last allowed delivery ({DequeueCount}): {Reason}")]
        public static partial void LastDeliveryFailed(ILogger logger, string function, long dequeueCount, string reason);

        [LoggerMessage(65, LogLevel.Warning, "{Function} will retry (delivery {DequeueCount}): {Reason}")]
        public static partial void WillRetry(ILogger logger, string function, long dequeueCount, string reason);

        [LoggerMessage(63, LogLevel.Error, "Run {RunId} failed: its {Function} message will not be delivered again")]
        public static partial void RunFailed(ILogger logger, string runId, string function);

        [LoggerMessage(120, LogLevel.Error, "{Function}: its last allowed delivery ({DequeueCount}) was cancelled; the message goes to the poison queue")]
        public static partial void LastDeliveryCancelled(ILogger logger, string function, long dequeueCount);

        [LoggerMessage(64, LogLevel.Warning, "Run {RunId} could not be marked failed ({Error}); it stays as it is")]
        public static partial void RunFailFailed(ILogger logger, string runId, string error);
    }
}

/// <summary>One delivery of a message to a queue function: its work, its name (the runtime's), which delivery it is.</summary>
public sealed record QueueInvocation(IQueueFunction Function, string Name, long DequeueCount);

/// <summary>
/// Thrown by a queue function to fail its invocation so the runtime delivers the message again. The
/// message names the function, the delivery and the reason (already logged; never a secret).
/// </summary>
public sealed class RetryLaterException(string message) : Exception(message);
