using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>Every step crashes once after doing its work: the run still ends right, with one GES backup per graph.</summary>
public abstract class CrashRecoveryTests : PipelineHarness
{
    public CrashRecoveryTests() => Decorate = inner => new CrashingFunction(inner);

    [Fact]
    public async Task A_crash_between_any_two_steps_recovers_without_a_second_backup()
    {
        await TickAsync();
        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(90));
        await AssertCopiedAsync(runs.Single(r => r.GraphId == PipelineHarness.GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == PipelineHarness.GraphB), "social");
        Assert.Single(State.Backups, b => b.GraphId == PipelineHarness.GraphA);
        Assert.Single(State.Backups, b => b.GraphId == PipelineHarness.GraphB);
        Assert.True(Services.GetServices<IQueueFunction>().OfType<CrashingFunction>().Sum(f => f.Crashes) >= 8);
    }

    [Fact]
    public async Task Add_backup_answer_lost_is_adopted_not_repeated()
    {
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{PipelineHarness.GraphA}/backups", Kind = "lostResponse", Status = 500, Count = 1 });
        await TickAsync();
        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(90));
        await AssertCopiedAsync(runs.Single(r => r.GraphId == PipelineHarness.GraphA), "orders");
        Assert.Single(State.Backups, b => b.GraphId == PipelineHarness.GraphA);
    }
}

public sealed class StandaloneCrashRecoveryTests : CrashRecoveryTests
{
    protected override bool UseCustomHandler => false;
}

public sealed class CustomHandlerCrashRecoveryTests : CrashRecoveryTests
{
    protected override bool UseCustomHandler => true;
}

/// <summary>Deadlines and delivery limits.</summary>
public abstract class PipelineLimitTests : PipelineHarness
{
    protected override Dictionary<string, string?> ExtraSettings() => new() { ["Backup:JobDeadline"] = "00:00:02" };

    [Fact]
    public async Task A_job_that_never_ends_fails_the_run_at_its_deadline()
    {
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{PipelineHarness.GraphA}/backups", Kind = "hangJob" });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        var hung = runs.Single(r => r.GraphId == PipelineHarness.GraphA);
        Assert.Equal(RunStatus.Failed, hung.Status);
        Assert.Contains("deadline", hung.Errors.Single().Reason, StringComparison.Ordinal);

        // Polling waits between looks (queue delays are whole seconds): a 2 s deadline takes a few polls at most,
        // none when the first look already comes after it.
        Assert.InRange(hung.PollCount, 0, 4);
    }
}



public abstract class DeliveryLimitTests : PipelineHarness
{
    public DeliveryLimitTests() => Decorate = inner => new AlwaysFailingFunction(inner);

    [Fact]
    public async Task A_message_failing_every_delivery_is_parked_after_the_limit()
    {
        var queues = Services.GetRequiredService<WorkQueues>();
        await queues.SendStartAsync(new StartBackupMessage(1, "http-limit-test", PipelineHarness.GraphA, "http", null));
        var poison = queues.Queue(QueueNames.Poison(QueueNames.StartBackup));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && (await poison.PeekMessagesAsync()).Value.Length == 0)
        {
            await Task.Delay(100);
        }

        var parked = Assert.Single((await poison.PeekMessagesAsync(5)).Value);
        Assert.Contains("http-limit-test", parked.Body.ToString(), StringComparison.Ordinal);

        // Parked only after host.json's maxDequeueCount deliveries, each counted by the queue.
        var limit = HostQueueOptions.Load(Path.Combine(Azurite.RepositoryRoot(), "host.json")).MaxDequeueCount;
        var failing = Services.GetServices<IQueueFunction>().OfType<AlwaysFailingFunction>().Single(f => f.Name == FunctionNames.StartBackup);
        Assert.True(limit > 1, "host.json should allow more than one delivery");
        Assert.Equal(Enumerable.Range(1, limit).Select(i => (long)i), failing.Deliveries.Order());
        Assert.Equal(0, (await queues.Queue(QueueNames.StartBackup).GetPropertiesAsync()).Value.ApproximateMessagesCount);
    }
}

/// <summary>A message that will never be delivered again takes its run with it: the run fails, visibly, instead of waiting forever.</summary>
public abstract class ExhaustedMessageFailsItsRunTests : PipelineHarness
{
    public ExhaustedMessageFailsItsRunTests() => Decorate = inner => new AlwaysFailingFunction(inner, FunctionNames.PollBackupJob);

    [Fact]
    public async Task A_poll_message_failing_every_delivery_fails_its_run_naming_the_poison_queue()
    {
        await TickAsync();
        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(60));
        Assert.All(runs, run =>
        {
            Assert.Equal(RunStatus.Failed, run.Status);
            Assert.Contains(run.Errors, e => e.Step == FunctionNames.PollBackupJob
                && e.Reason.Contains(QueueNames.Poison(QueueNames.PollBackupJob), StringComparison.Ordinal));
        });
    }
}

public sealed class StandaloneExhaustedMessageFailsItsRunTests : ExhaustedMessageFailsItsRunTests
{
    protected override bool UseCustomHandler => false;
}

public sealed class CustomHandlerExhaustedMessageFailsItsRunTests : ExhaustedMessageFailsItsRunTests
{
    protected override bool UseCustomHandler => true;
}

public sealed class StandaloneDeliveryLimitTests : DeliveryLimitTests
{
    protected override bool UseCustomHandler => false;
}

public sealed class CustomHandlerDeliveryLimitTests : DeliveryLimitTests
{
    protected override bool UseCustomHandler => true;
}

/// <summary>Bytes that do not match the source are copied again from scratch, a bounded number of times.</summary>
public abstract class CorruptedDownloadTests : PipelineHarness
{
    [Fact]
    public async Task One_corrupted_download_is_copied_again_and_the_run_succeeds()
    {
        // One download of a first file (more than 7 bytes, ≤ 16 MiB: the source declares its MD5) arrives with a flipped byte, once.
        State.Faults.Add(new FaultSpec { Path = "/obs/*br01.tar", Kind = "corrupt", Offset = 7, Count = 1 });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphB), "social");
        var retried = Assert.Single(runs.SelectMany(r => r.Files), f => f.ContentRetries > 0);
        Assert.Equal(1, retried.ContentRetries);
        Assert.Null(retried.Error);
    }

    [Fact]
    public async Task A_file_corrupted_every_time_fails_after_the_configured_attempts_naming_the_file()
    {
        State.Faults.Add(new FaultSpec { Path = "/obs/*br01.tar", Kind = "corrupt", Offset = 7, Count = 0 });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        Assert.All(runs, r => Assert.Equal(RunStatus.PartiallyFailed, r.Status));
        var run = runs.Single(r => r.GraphId == GraphA);
        var failed = Assert.Single(run.Files, f => f.Status == RunFileStatus.Failed);
        Assert.EndsWith("br01.tar", failed.Name, StringComparison.Ordinal);
        Assert.All(run.Files.Where(f => f != failed), f => Assert.Equal(RunFileStatus.Completed, f.Status));
        Assert.Equal(2, failed.ContentRetries);
        Assert.Contains("MD5 mismatch", failed.Error, StringComparison.Ordinal);
        Assert.Contains("after 3 copies from scratch", failed.Error, StringComparison.Ordinal);
        Assert.Contains(run.Errors, e => e.Reason.StartsWith(failed.Name, StringComparison.Ordinal));
    }
}



/// <summary>The same suite against the published isolated worker on the local Functions host.</summary>
public sealed class WorkerLimitTests : PipelineLimitTests
{
    protected override bool UseCustomHandler => false;

    protected override bool UseWorker => true;
}

/// <summary>The same suite against the published isolated worker on the local Functions host.</summary>
public sealed class WorkerCorruptedDownloadTests : CorruptedDownloadTests
{
    protected override bool UseCustomHandler => false;

    protected override bool UseWorker => true;
}
