namespace BackupRelay.Messaging;

/// <summary>A queue-triggered function: its name (= folder = route), its queue, and the work.</summary>
public interface IQueueFunction
{
    string Name { get; }
    string Queue { get; }

    Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken);
}
