using BackupRelay.LocalHost;
using System.Text.Json;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>The end-to-end scenarios, through the local Functions host and the published worker.</summary>
public sealed class PipelineTests : PipelineHarness
{
    [Fact]
    public async Task A_scheduled_backup_of_several_graphs_lands_byte_exact_with_its_manifest()
    {
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphB), "social");
        Assert.All(runs, r => Assert.Equal("schedule", r.Trigger));
        Assert.All(runs, r => Assert.StartsWith("sch-", r.Id, StringComparison.Ordinal));

        // GES calls are bounded: graph, add, a few polls, list, links (once per copy slice).
        var slices = runs.Single(r => r.GraphId == GraphA).Files.Sum(f => f.Slices);
        Assert.InRange(GesCalls(GraphA), 5, 8 + slices);

        // What the app logs inside an invocation reaches the host with that invocation's id, so the host files it under
        // the function; only what runs outside invocations (start-up, the timers' hosted services) is unattributed.
        var lines = Logs.Collector.GetSnapshot();
        Assert.Contains(lines, r => r.Category == FunctionLogs.CategoryFor(FunctionNames.CopyBackupFile));
        Assert.Contains(lines, r => r.Category == FunctionLogs.CategoryFor(FunctionNames.ScheduleBackups));
        Assert.DoesNotContain(lines, r => r.Category == FunctionLogs.UnattributedCategory
            && new[] { "BackupRelay.Copying.", "BackupRelay.Backups.", "BackupRelay.Scheduling.", "BackupRelay.Hosting.FunctionInvoker" }
                .Any(prefix => r.Message.StartsWith(prefix, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Duplicate_ticks_and_deliveries_start_one_backup_and_one_copy()
    {
        await TickAsync();
        await TickAsync();
        var start = Services.GetRequiredService<WorkQueues>();
        var runId = BackupRelay.Scheduling.ScheduleBackupsHandler.RunId(GraphA,
            BackupRelay.Scheduling.ScheduleBackupsHandler.Occurrence("0 0 2 * * *", DateTimeOffset.UtcNow));
        await start.SendStartAsync(new StartBackupMessage(1, runId, GraphA, "schedule", null));
        var runs = await WaitForRunsAsync(2);
        Assert.Equal(2, runs.Count);
        Assert.Single(State.Backups, b => b.GraphId == GraphA);
        Assert.Single(State.Backups, b => b.GraphId == GraphB);
        Assert.All(runs, r => Assert.Equal(RunStatus.Succeeded, r.Status));
    }

    [Fact]
    public async Task Concurrent_duplicate_start_messages_call_add_backup_once()
    {
        var start = Services.GetRequiredService<BackupRelay.Backups.StartBackupHandler>();
        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => start.HandleAsync(
            JsonSerializer.Serialize(new StartBackupMessage(1, "http-concurrent", GraphA, "http", null, $"nonce-{i}"), BackupRelayJson.Default.StartBackupMessage),
            1, CancellationToken.None)));
        Assert.All(results, r => Assert.Equal(HandlerOutcome.Done, r.Outcome));
        Assert.Single(State.Backups, b => b.GraphId == GraphA);
        Assert.Single(State.RecordedRequests(), r => r.Method == "POST" && r.Path.EndsWith($"/graphs/{GraphA}/backups", StringComparison.Ordinal));
        var runs = await WaitForRunsAsync(1);
        Assert.Equal(RunStatus.Succeeded, Assert.Single(runs).Status);
    }

    [Fact]
    public async Task A_job_failure_fails_the_run_with_the_job_reason()
    {
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{GraphA}/backups", Kind = "failJob", Reason = "disk quota exceeded" });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        var failed = runs.Single(r => r.GraphId == GraphA);
        Assert.Equal(RunStatus.Failed, failed.Status);
        Assert.Contains("disk quota exceeded", failed.Errors.Single().Reason, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Succeeded, runs.Single(r => r.GraphId == GraphB).Status);
    }

    [Fact]
    public async Task A_graph_that_is_not_running_fails_its_run_with_that_reason()
    {
        State.Graphs[GraphB].Status = "900";
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        var failed = runs.Single(r => r.GraphId == GraphB);
        Assert.Equal(RunStatus.Failed, failed.Status);
        Assert.Contains("not running", failed.Errors.Single().Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(State.Backups, b => b.GraphId == GraphB);
    }

    [Fact]
    public async Task Expiring_links_and_throttling_still_end_in_success()
    {
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "expireLink", Count = 3 });
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "drop", AfterBytes = Block + 10, Count = 1 });
        State.Faults.Add(new FaultSpec { Method = "GET", Path = "/v2/*/jobs/*", Kind = "status", Status = 429, RetryAfterSeconds = 0, Count = 4 });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphB), "social");
        Assert.DoesNotContain("Signature=", Logs.All(), StringComparison.Ordinal);
        Assert.DoesNotContain(DemoSeed.Password, Logs.All(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_message_is_parked_with_its_reason()
    {
        var queues = Services.GetRequiredService<WorkQueues>();
        await queues.Queue(QueueNames.StartBackup).SendMessageAsync("{not json");
        await queues.Queue(QueueNames.PollBackupJob).SendMessageAsync("""{"v":99,"runId":"r","attempt":0}""");
        var parked = await WaitForParkedAsync(QueueNames.StartBackup);
        Assert.Contains("malformed", parked, StringComparison.Ordinal);
        Assert.Contains("version 99", await WaitForParkedAsync(QueueNames.PollBackupJob), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData('<')]
    [InlineData('é')]
    public async Task A_malformed_message_that_grows_when_escaped_is_parked_once_within_the_queues_limit(char fill)
    {
        // 20 KB of text that JSON escaping grows (\u003C is six bytes, é is two): the parked record must still fit.
        var text = new string(fill, 20 * 1024);
        await Services.GetRequiredService<WorkQueues>().Queue(QueueNames.CopyBackupFile).SendMessageAsync(text);
        var parked = System.Text.Json.JsonSerializer.Deserialize(await WaitForParkedAsync(QueueNames.CopyBackupFile), BackupRelayJson.Default.ParkedMessage)!;
        Assert.Equal(FunctionNames.CopyBackupFile, parked.Function);
        Assert.True(parked.Message is { Length: > 1024 } && text.StartsWith(parked.Message, StringComparison.Ordinal), "the parked text is not the message's start");
        Assert.True(parked.Message.Length == text.Length || parked.OriginalLength == text.Length, "a cut text must say the original length");

        // Delivered once and parked once: no loop of failed parks.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await Services.GetRequiredService<WorkQueues>().Queue(QueueNames.CopyBackupFile).GetPropertiesAsync()).Value.ApproximateMessagesCount > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the message was not removed after it was parked");
            await Task.Delay(100);
        }

        Assert.Equal(1, LocalHost.Invocations[FunctionNames.CopyBackupFile]);
        Assert.Single((await Services.GetRequiredService<WorkQueues>().Queue(QueueNames.Poison(QueueNames.CopyBackupFile)).PeekMessagesAsync(10)).Value);
    }

    [Fact]
    public async Task A_message_that_is_not_base64_is_parked_with_its_text_and_the_rest_of_its_batch_runs()
    {
        var queues = Services.GetRequiredService<WorkQueues>();
        var plain = new Azure.Storage.Queues.QueueClient(Azurite.ConnectionString, QueueNames.CopyBackupFile,
            new Azure.Storage.Queues.QueueClientOptions(BackupRelay.Storage.StorageClientSettings.QueueVersion) { MessageEncoding = Azure.Storage.Queues.QueueMessageEncoding.None });
        await queues.Queue(QueueNames.CopyBackupFile).SendMessageAsync("""{"v":77,"runId":"r","file":"f"}""");
        await plain.SendMessageAsync("{raw text, not base64}");
        await queues.Queue(QueueNames.CopyBackupFile).SendMessageAsync("""{"v":78,"runId":"r","file":"f"}""");

        // Read as it is on the wire: the host moves an undecodable message to the poison queue verbatim (the
        // queue extension's MessageDecodingFailed handler); the app parks the other two with their reason, base64-encoded.
        var parked = new List<string>();
        var poison = new Azure.Storage.Queues.QueueClient(Azurite.ConnectionString, QueueNames.Poison(QueueNames.CopyBackupFile),
            new Azure.Storage.Queues.QueueClientOptions(BackupRelay.Storage.StorageClientSettings.QueueVersion) { MessageEncoding = Azure.Storage.Queues.QueueMessageEncoding.None });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && parked.Count < 3)
        {
            parked = await poison.ExistsAsync()
                ? [.. (await poison.PeekMessagesAsync(10)).Value.Select(m => Base64TextOrRaw(m.Body.ToString()))]
                : [];
            await Task.Delay(100);
        }

        Assert.Equal(3, parked.Count);
        Assert.Contains(parked, p => p.Contains("version 77", StringComparison.Ordinal));
        Assert.Contains(parked, p => p.Contains("version 78", StringComparison.Ordinal));
        var raw = Assert.Single(parked, p => p.Contains("raw text, not base64", StringComparison.Ordinal));
        Assert.Equal("{raw text, not base64}", raw);

        // A parked message is deleted by the host after the invocation that parked it answers: give that a moment.
        var left = -1;
        while (DateTime.UtcNow < deadline && (left = (await queues.Queue(QueueNames.CopyBackupFile).GetPropertiesAsync()).Value.ApproximateMessagesCount) > 0)
        {
            await Task.Delay(100);
        }

        Assert.Equal(0, left);
    }

    private static string Base64TextOrRaw(string wire)
    {
        var buffer = new byte[wire.Length];
        return Convert.TryFromBase64String(wire, buffer, out var written) ? System.Text.Encoding.UTF8.GetString(buffer, 0, written) : wire;
    }

    private async Task<string> WaitForParkedAsync(string queue)
    {
        var poison = Services.GetRequiredService<WorkQueues>().Queue(QueueNames.Poison(queue));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var messages = (await poison.PeekMessagesAsync(5)).Value;
            if (messages.Length > 0)
            {
                return messages[0].Body.ToString();
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"nothing parked in {queue}-poison");
    }
}
