using System.Text.Json.Serialization.Metadata;
using BackupRelay.Runs;

namespace BackupRelay.Messaging;

/// <summary>
/// A queue function's work: the queue it reads (a message it can never take is parked in that queue's poison queue)
/// and what it does with one message. Its name is the <c>[Function]</c> attribute's alone: the runtime gives it with
/// each invocation, and the adapter passes it on.
/// </summary>
public interface IQueueFunction
{
    string Queue { get; }

    Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken);
}

/// <summary>A message that moves one run on: its version and the run it belongs to.</summary>
public interface IRunMessage
{
    int V { get; }

    string RunId { get; }
}

/// <summary>
/// A queue function that moves one run on by one step. The opening every such function shares is written once here:
/// parse the message, check its version and run id, load the run — and park a message that can never succeed (not
/// JSON, another version, an unsafe id, a run that does not exist). The step itself gets the message and its run.
/// </summary>
public abstract class RunStepFunction<TMessage>(IRunRecords runs, JsonTypeInfo<TMessage> messageType) : IQueueFunction
    where TMessage : IRunMessage
{
    public abstract string Queue { get; }

    /// <summary>The run records, for the step's own reads and writes.</summary>
    protected IRunRecords Runs { get; } = runs;

    public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        var (parsed, run, stop) = await MessageParser.ReadRunMessageAsync(message, messageType, Runs, cancellationToken);
        return stop ?? await HandleAsync(parsed!, run!, dequeueCount, cancellationToken);
    }

    /// <summary>The step, for a well-formed message of an existing run.</summary>
    protected abstract Task<HandlerResult> HandleAsync(TMessage message, RunRecord run, long dequeueCount, CancellationToken cancellationToken);
}
