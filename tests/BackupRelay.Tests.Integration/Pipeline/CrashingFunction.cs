using BackupRelay.Messaging;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Does the work of a message, then "crashes" before it is acknowledged on its first delivery, so
/// every step runs twice: the crash between any two steps.
/// </summary>
public sealed class CrashingFunction(IQueueFunction inner) : IQueueFunction
{
    public int Crashes;

    public string Name => inner.Name;
    public string Queue => inner.Queue;

    public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        var result = await inner.HandleAsync(message, dequeueCount, cancellationToken);
        if (dequeueCount == 1 && result.Outcome == HandlerOutcome.Done)
        {
            Interlocked.Increment(ref Crashes);
            throw new InvalidOperationException("simulated crash after the step, before the message was settled");
        }

        return result;
    }
}

/// <summary>Fails every delivery: the message must end parked after the host's delivery limit.</summary>
public sealed class AlwaysFailingFunction(IQueueFunction inner, string failing = FunctionNames.StartBackup) : IQueueFunction
{
    public string Name => inner.Name;
    public string Queue => inner.Queue;

    /// <summary>The dequeue count of every delivery the failing function saw.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<long> Deliveries { get; } = new();

    public Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        if (inner.Name != failing)
        {
            return inner.HandleAsync(message, dequeueCount, cancellationToken);
        }

        Deliveries.Enqueue(dequeueCount);
        throw new TimeoutException("simulated outage");
    }
}
