using System.Diagnostics;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// A host stopping with an invocation in flight, as the runtime stops: the invocation is cancelled
/// (<c>InvocationCancel</c> reaches the function's token), its message is not settled and comes back when
/// its visibility ends, and the next host runs it to the end.
/// </summary>
public sealed class ShutdownTests : PipelineHarness
{
    protected override TimeSpan MessageVisibility => TimeSpan.FromSeconds(3);

    [Fact]
    public async Task A_message_in_flight_at_shutdown_is_cancelled_and_runs_again_on_the_next_host()
    {
        // GES takes a minute to answer "add backup": StartBackup is in flight when the host stops.
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{GraphA}/backups", Kind = "latency", DelayMs = 60_000, Count = 1 });
        await Services.GetRequiredService<WorkQueues>().SendStartAsync(new StartBackupMessage(1, "http-shutdown", GraphA, "http", null, "n"));
        // In flight in the worker, not just sent to it: its add-backup call has reached GES (and taken the slow answer, so
        // the next host's call is answered at once; stopped before it, the next host's call would wait out the client's
        // attempt timeout instead).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (LocalHost.InFlight(FunctionNames.StartBackup) == 0
            || State.MaxConcurrent("POST", $"/v2/{DemoSeed.ProjectId}/graphs/{GraphA}/backups") == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "StartBackup never reached GES");
            await Task.Delay(20);
        }

        var queue = Storage.GetQueue(QueueNames.StartBackup);
        Assert.Empty((await queue.PeekMessagesAsync()).Value);

        // The stop cancels the invocation instead of waiting out the minute.
        var stopping = Stopwatch.StartNew();
        await StopHostAsync();
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(20), $"the stop took {stopping.Elapsed}");
        Assert.Contains(Logs.Collector.GetSnapshot(), r => r.Message.Contains("StartBackup", StringComparison.Ordinal)
            && r.Message.Contains("cancel", StringComparison.OrdinalIgnoreCase));

        // Not settled: still in the queue, hidden until its visibility ends, then delivered again.
        Assert.Equal(1, (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
        await StartHostAsync(Configuration());
        var run = Assert.Single(await WaitForRunsAsync(1, TimeSpan.FromSeconds(90)));
        Assert.Equal("http-shutdown", run.Id);
        await AssertCopiedAsync(run, "orders");
    }
}
