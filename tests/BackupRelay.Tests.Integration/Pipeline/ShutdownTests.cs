using BackupRelay.Configuration;
using BackupRelay.Messaging;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>Waits inside StartBackup until cancelled: a message in flight when the host stops.</summary>
public sealed class BlockingFunction(IQueueFunction inner) : IQueueFunction
{
    public static readonly TaskCompletionSource Entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Name => inner.Name;
    public string Queue => inner.Queue;

    public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
    {
        if (inner.Name != FunctionNames.StartBackup)
        {
            return await inner.HandleAsync(message, dequeueCount, cancellationToken);
        }

        Entered.TrySetResult();
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return HandlerResult.Done;
    }
}

/// <summary>The standalone host gives unfinished messages back at once when it stops, instead of after their lease.</summary>
public sealed class StandaloneShutdownTests : PipelineHarness
{
    public StandaloneShutdownTests() => Decorate = inner => new BlockingFunction(inner);

    protected override bool UseCustomHandler => false;

    [Fact]
    public async Task A_message_in_flight_at_shutdown_is_released_at_once()
    {
        await Services.GetRequiredService<WorkQueues>().SendStartAsync(new StartBackupMessage(1, "http-shutdown", GraphA, "http", null, "n"));
        await BlockingFunction.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var queue = Storage.GetQueue(QueueNames.StartBackup);
        Assert.Empty((await queue.PeekMessagesAsync()).Value);

        await StopHostAsync();

        // Leased for 10 minutes when received; visible again right after the stop.
        var released = Assert.Single((await queue.PeekMessagesAsync()).Value);
        Assert.Contains("http-shutdown", released.Body.ToString(), StringComparison.Ordinal);
        Assert.Equal(1, released.DequeueCount);
    }
}
