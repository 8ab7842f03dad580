using BackupRelay.Messaging;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Hosting;

/// <summary>
/// Runs a queue function for either host: exceptions become "retry", parked messages go to the
/// poison queue with their reason. Both hosts apply the delivery limit on top.
/// </summary>
public sealed partial class FunctionInvoker(IEnumerable<IQueueFunction> functions, WorkQueues queues, ILogger<FunctionInvoker> logger)
{
    private readonly Dictionary<string, IQueueFunction> _functions = functions.ToDictionary(f => f.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<IQueueFunction> Functions => _functions.Values;

    public async Task<HandlerResult> InvokeAsync(IQueueFunction function, string? message, long dequeueCount, CancellationToken cancellationToken)
    {
        HandlerResult result;
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
                throw;
            }
            catch (Exception ex)
            {
                Log.Failed(logger, function.Name, dequeueCount, ex.GetType().Name, ex.Message);
                result = HandlerResult.Retry($"{ex.GetType().Name}: {ex.Message}");
            }
        }

        if (result.Outcome == HandlerOutcome.Park)
        {
            Log.Parked(logger, function.Name, result.Reason ?? "");
            await queues.ParkAsync(function.Queue, function.Name, result.Reason ?? "parked", message, cancellationToken);
        }

        return result;
    }

    /// <summary>A message that failed its last allowed delivery: park it with the last reason.</summary>
    public async Task ParkExhaustedAsync(IQueueFunction function, string? message, long dequeueCount, string? reason, CancellationToken cancellationToken)
    {
        var why = $"failed {dequeueCount} deliveries; last: {reason}";
        Log.Parked(logger, function.Name, why);
        await queues.ParkAsync(function.Queue, function.Name, why, message, cancellationToken);
    }

    private static partial class Log
    {
        [LoggerMessage(60, LogLevel.Warning, "{Function} failed (delivery {DequeueCount}): {Error}: {Message}")]
        public static partial void Failed(ILogger logger, string function, long dequeueCount, string error, string message);

        [LoggerMessage(61, LogLevel.Error, "{Function}: message parked in the poison queue: {Reason}")]
        public static partial void Parked(ILogger logger, string function, string reason);
    }
}
