using Azure.Storage.Queues;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.LocalHost;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The runtime's rules as the published worker meets them through the local Functions host: what the
/// host does (poison moves, retries, restarts) and what the app does on top (the last-delivery rule).
/// </summary>
public sealed class WorkerRuntimeTests : PipelineHarness
{
    protected override bool UseCustomHandler => false;

    protected override bool UseWorker => true;

    [Fact]
    public async Task A_message_that_is_not_base64_goes_to_poison_verbatim_without_an_invocation()
    {
        const string text = "this is not base64 {!}";
        var raw = new QueueClient(Azurite.ConnectionString, QueueNames.StartBackup, new QueueClientOptions(StorageVersions.Queue) { MessageEncoding = QueueMessageEncoding.None });
        await raw.SendMessageAsync(text);
        var poison = new QueueClient(Azurite.ConnectionString, QueueNames.Poison(QueueNames.StartBackup),
            new QueueClientOptions(StorageVersions.Queue) { MessageEncoding = QueueMessageEncoding.None });
        var parked = await WaitForPoisonAsync(poison);
        Assert.Equal(text, parked);
        Assert.False(LocalHost!.Invocations.ContainsKey("StartBackup"));
    }

    [Fact]
    public async Task A_message_failing_every_delivery_goes_to_poison_after_max_dequeue_count_and_its_run_fails()
    {
        // GES down for good: every StartBackup delivery fails (after the client's own retries) and throws for a retry.
        State.Faults.Add(new FaultSpec { Path = "/v2/*", Kind = "status", Status = 500, Count = 0, ErrorCode = "GES.0001", ErrorMessage = "down" });
        var queues = Services.GetRequiredService<WorkQueues>();
        await queues.SendStartAsync(new StartBackupMessage(1, "http-worker-limit", GraphA, "http", null));
        var poison = new QueueClient(Azurite.ConnectionString, QueueNames.Poison(QueueNames.StartBackup),
            new QueueClientOptions(StorageVersions.Queue) { MessageEncoding = QueueMessageEncoding.Base64 });
        var parked = await WaitForPoisonAsync(poison, TimeSpan.FromSeconds(120));

        // The original message, unchanged, after host.json's maxDequeueCount deliveries.
        Assert.Contains("http-worker-limit", parked, StringComparison.Ordinal);
        Assert.Equal(LocalHost!.HostJson.MaxDequeueCount, LocalHost.Invocations["StartBackup"]);

        // The app's last-delivery rule: the run fails naming the poison queue, so nothing waits on the message.
        var run = await Runs.GetAsync("http-worker-limit");
        Assert.NotNull(run);
        Assert.Equal(RunStatus.Failed, run!.Status);
        Assert.Contains(QueueNames.Poison(QueueNames.StartBackup), string.Join(" ", run.Errors.Select(e => e.Reason)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_worker_killed_mid_copy_is_restarted_and_every_copy_completes_byte_exact()
    {
        State.Settings.ObsBytesPerSecondPerConnection = 48 * 1024;
        await TickAsync();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !(await Runs.ListAsync()).Any(r => r.Files.Any(f => f.BytesCopied > 0)))
        {
            await Task.Delay(50);
        }

        var copying = (await Runs.ListAsync()).Where(r => !r.IsFinished).ToList();
        Assert.NotEmpty(copying);
        await LocalHost!.Worker!.KillAsync();
        State.Settings.ObsBytesPerSecondPerConnection = 0;

        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(120));
        foreach (var run in runs)
        {
            await AssertCopiedAsync(run, run.GraphId == GraphA ? "orders" : "social");
        }

        Assert.True(LocalHost.WorkerStarts >= 2, "the worker was not restarted");
    }

    [Fact]
    public async Task A_bad_setting_stops_the_worker_with_exit_code_3_naming_it()
    {
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["AzureWebJobsStorage"] = Azurite.ConnectionString,
            ["HuaweiCloud__Region"] = DemoSeed.Region,
            ["HuaweiCloud__ProjectId"] = DemoSeed.ProjectId,
            ["Copy__MaxConcurrency"] = "0",
        };
        var failure = await Assert.ThrowsAsync<WorkerStartException>(() => LocalFunctionsHost.StartAsync(new LocalHostOptions
        {
            AppDirectory = WorkerApp.Directory,
            HttpPort = 0,
            Settings = settings,
        }, NullLoggerFactory.Instance));
        Assert.Equal(3, failure.ExitCode);
        Assert.Contains("Copy__MaxConcurrency", failure.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", failure.Output, StringComparison.Ordinal);
    }

    private static async Task<string> WaitForPoisonAsync(QueueClient poison, TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < deadline)
        {
            if (await poison.ExistsAsync() && (await poison.PeekMessagesAsync(1)).Value is [var message])
            {
                return message.Body.ToString();
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"nothing reached {poison.Name}");
    }
}
