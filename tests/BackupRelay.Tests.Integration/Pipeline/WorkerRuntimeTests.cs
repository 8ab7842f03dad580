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
    // The circuit GES's failures open closes again soon, so a replay after the fix is not refused by it.
    protected override Dictionary<string, string?> ExtraSettings() => new() { ["HuaweiCloud:Resilience:BreakDuration"] = "00:00:01" };

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
        Assert.False(LocalHost.Invocations.ContainsKey("StartBackup"));
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
        Assert.Equal(LocalHost.HostJson.MaxDequeueCount, LocalHost.Invocations["StartBackup"]);

        // Each failed delivery says why, in the app's own log, reaching the host through the worker's RpcLog with the invocation's id:
        // the host files it under the function (Function.StartBackup.User, the id in scope), as the real host does —
        // a user log naming no running invocation is one the real host drops.
        var retry = Logs.Collector.GetSnapshot().First(r => r.Message.StartsWith("BackupRelay.Hosting.FunctionInvoker: StartBackup failed (delivery 1):", StringComparison.Ordinal));
        Assert.Equal(FunctionLogs.CategoryFor("StartBackup"), retry.Category);
        var scope = Assert.Single(retry.Scopes.OfType<IEnumerable<KeyValuePair<string, object>>>());
        Assert.True(Guid.TryParse(scope.Single(p => p.Key == "InvocationId").Value.ToString(), out _));
        Assert.Equal("StartBackup", scope.Single(p => p.Key == "FunctionName").Value);
        Assert.True(LocalHost.FunctionLogs.AttributedCount > 0);

        // The worker exports its own telemetry and host.json tells the host so (telemetryMode), or the host would send
        // the worker's logs a second time (the local host warns of that, event 1024).
        Assert.Equal("True", LocalHost.WorkerCapabilities["WorkerOpenTelemetryEnabled"]);
        Assert.Equal("OpenTelemetry", LocalHost.HostJson.TelemetryMode);
        Assert.DoesNotContain(Logs.Collector.GetSnapshot(), r => r.Id.Id == 1024);

        // The app's last-delivery rule: the run fails naming the poison queue, so nothing waits on the message.
        var run = await Runs.GetAsync("http-worker-limit");
        Assert.NotNull(run);
        Assert.Equal(RunStatus.Failed, run!.Status);
        Assert.Contains(QueueNames.Poison(QueueNames.StartBackup), string.Join(" ", run.Errors.Select(e => e.Reason)), StringComparison.Ordinal);

        // GES is back (and the circuit its failures opened has closed): the operator replays the poison queue (master key). The runtime-moved message goes back to its queue,
        // its run resumes where it failed, and the backup lands verified; its failure stays in the run's history.
        State.Faults.Clear();
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        using (var withoutMaster = await Api.SendAsync(ReplayRequest(QueueNames.StartBackup, FunctionKey)))
        {
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, withoutMaster.StatusCode);
        }

        var answer = await ReplayAsync(QueueNames.StartBackup);
        var replayed = Assert.Single(answer["messages"]!.AsArray())!;
        Assert.Equal("resumed", replayed["outcome"]!.GetValue<string>());
        Assert.Equal("runtime", replayed["format"]!.GetValue<string>());
        Assert.Equal("http-worker-limit", replayed["runId"]!.GetValue<string>());
        var resumed = Assert.Single(await WaitForRunsAsync(1));
        await AssertCopiedAsync(resumed, "orders");
        Assert.Equal(BackupRelay.Runs.CopyLevel.Verified, resumed.Trust!.Level);
        Assert.Contains(resumed.Errors, e => e.Reason.Contains(QueueNames.Poison(QueueNames.StartBackup), StringComparison.Ordinal));
        Assert.Single(State.Backups, b => b.GraphId == GraphA);
        Assert.Empty((await poison.PeekMessagesAsync(32)).Value);

        // Again: nothing left to replay, and the run is not touched.
        Assert.Empty((await ReplayAsync(QueueNames.StartBackup))["messages"]!.AsArray());
    }

    [Fact]
    public async Task Parked_messages_are_replayed_whole_and_what_cannot_be_is_kept_saying_why()
    {
        var queues = Services.GetRequiredService<WorkQueues>();
        var poison = new QueueClient(Azurite.ConnectionString, QueueNames.Poison(QueueNames.StartBackup),
            new QueueClientOptions(StorageVersions.Queue) { MessageEncoding = QueueMessageEncoding.None });
        await poison.CreateIfNotExistsAsync();

        // As an instance of an older version parks a message it cannot read (a rolling deployment): the app's wrapper.
        var start = System.Text.Json.JsonSerializer.Serialize(new StartBackupMessage(1, "http-parked-then-replayed", GraphA, "http", null, "n1"),
            BackupRelayJson.Default.StartBackupMessage);
        await poison.SendMessageAsync(Base64(queues.ParkedText("StartBackup", "unsupported message: version 1", start)));
        // A parked record whose message had to be cut to fit, and a message that never was base64.
        await poison.SendMessageAsync(Base64(queues.ParkedText("StartBackup", "too long", new string('x', 200_000))));
        await poison.SendMessageAsync("this never was base64 {!}");

        var answer = await ReplayAsync(QueueNames.StartBackup);
        var messages = answer["messages"]!.AsArray().Select(m => m!).ToList();
        Assert.Equal(3, messages.Count);
        Assert.Equal(1, answer["replayed"]!.GetValue<int>());
        Assert.Equal(2, answer["kept"]!.GetValue<int>());
        var whole = messages.Single(m => m["outcome"]!.GetValue<string>() == "replayed");
        Assert.Equal("parked", whole["format"]!.GetValue<string>());
        Assert.Equal("StartBackup", whole["function"]!.GetValue<string>());
        Assert.Contains(messages, m => m["outcome"]!.GetValue<string>() == "kept" && m["reason"]!.GetValue<string>().Contains("cut to fit", StringComparison.Ordinal));
        Assert.Contains(messages, m => m["outcome"]!.GetValue<string>() == "kept" && m["reason"]!.GetValue<string>().Contains("not base64", StringComparison.Ordinal));

        var run = Assert.Single(await WaitForRunsAsync(1));
        Assert.Equal("http-parked-then-replayed", run.Id);
        await AssertCopiedAsync(run, "orders");

        // A bad queue name is a problem naming the field; the kept messages stay where they are.
        using (var bad = await Api.SendAsync(ReplayRequest("no-such-queue", Keys.MasterKey)))
        {
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.NotNull(System.Text.Json.Nodes.JsonNode.Parse(await bad.Content.ReadAsStringAsync())!["errors"]!["queue"]);
        }

        using (var badLimit = await Api.SendAsync(ReplayRequest(QueueNames.StartBackup + "?limit=0", Keys.MasterKey)))
        {
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, badLimit.StatusCode);
        }

        Assert.Equal(2, (await poison.GetPropertiesAsync()).Value.ApproximateMessagesCount);
        static string Base64(string text) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text));
    }

    private static HttpRequestMessage ReplayRequest(string queueAndQuery, string key)
    {
        var (queue, query) = queueAndQuery.Split('?', 2) is [var q, var rest] ? (q, "?" + rest) : (queueAndQuery, "");
        return new HttpRequestMessage(HttpMethod.Post, $"/api/queues/{queue}/poison/replay{query}") { Headers = { { "x-functions-key", key } } };
    }

    private async Task<System.Text.Json.Nodes.JsonNode> ReplayAsync(string queue)
    {
        using var response = await Api.SendAsync(ReplayRequest(queue, Keys.MasterKey));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.OK, body);
        return System.Text.Json.Nodes.JsonNode.Parse(body)!;
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
        await LocalHost.Worker!.KillAsync();
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

/// <summary>
/// An invocation that outlives <c>functionTimeout</c>: the host kills the worker (taking every invocation in
/// flight with it) and starts another, as the runtime does for out-of-process workers; the backup still
/// lands verified, once.
/// </summary>
public sealed class FunctionTimeoutTests : PipelineHarness
{
    protected override Dictionary<string, string> HostJsonOverrides() => new(TestTimings()) { [BackupRelay.Hosting.HostJson.OverridePrefix + "functionTimeout"] = "00:00:04" };

    [Fact]
    public async Task An_invocation_past_function_timeout_restarts_the_worker_and_the_backup_still_lands_verified()
    {
        // The first download hangs for 20 s: far past the 4 s function timeout.
        State.Faults.Add(new FaultSpec { Method = "GET", Path = "/obs/*", Kind = "latency", DelayMs = 20_000, Count = 1 });
        var firstWorker = LocalHost.Worker!.ProcessId;
        await TickAsync();
        var runs = await WaitForRunsAsync(2, TimeSpan.FromSeconds(120));
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphB), "social");
        Assert.True(LocalHost.WorkerStarts >= 2, "the worker was never restarted");

        // As the operating system sees it: the first worker process is gone and another one did the work.
        Assert.False(Directory.Exists($"/proc/{firstWorker}") && !File.ReadAllText($"/proc/{firstWorker}/status").Contains("State:\tZ", StringComparison.Ordinal),
            $"worker {firstWorker} still runs");
        Assert.NotEqual(firstWorker, LocalHost.Worker!.ProcessId);
        Assert.Contains(Logs.Collector.GetSnapshot(), r => r.Message.Contains("outlived functionTimeout", StringComparison.Ordinal)
            || r.Message.Contains("functionTimeout", StringComparison.Ordinal));
        Assert.Single(State.Backups, b => b.GraphId == GraphA);
        Assert.Single(State.Backups, b => b.GraphId == GraphB);
    }

    [Fact]
    public async Task Telemetry_exporters_that_reach_nothing_do_not_delay_readiness()
    {
        // Azure Monitor with Entra ID (no managed identity here) and OTLP, both pointing at a closed port.
        var settings = WorkerSettings(Configuration());
        settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] = "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:9/";
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] = "ClientId=00000000-0000-0000-0000-000000000002;Authorization=AAD";
        settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9";
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await using var host = await LocalFunctionsHost.StartAsync(new LocalHostOptions { AppDirectory = WorkerApp.Directory, HttpPort = 0, Settings = settings },
            NullLoggerFactory.Instance);
        var ready = watch.Elapsed;
        Assert.True(ready < TimeSpan.FromSeconds(10), $"ready after {ready}");
        using var client = new HttpClient { BaseAddress = host.HttpAddress };
        using var health = await client.GetAsync("/api/health");
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
        Assert.False(host.Worker!.HasExited);
    }
}

/// <summary>
/// How many invocations of one queue function run at once: a batch of <c>batchSize</c>, and a new batch
/// once no more than <c>newBatchThreshold</c> are left running — so at most the sum of the two.
/// </summary>
public sealed class QueueConcurrencyTests : PipelineHarness
{
    private static readonly BackupRelay.Hosting.HostJson Rules = BackupRelay.Hosting.HostJson.Read(Path.Combine(Azurite.RepositoryRoot(), "host.json"), _ => null);

    /// <summary>
    /// First a batch whose graph-B half ends at once and whose graph-A half waits on GES, so the host fetches
    /// a second batch while those are held; then enough graph-A messages for two more batches.
    /// </summary>
    protected override async Task BeforeHostStartsAsync()
    {
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{GraphA}/backups", Kind = "latency", DelayMs = 6000, Count = 0 });
        var queues = new WorkQueues(Storage, TimeProvider.System);
        for (var i = 0; i < Rules.BatchSize; i++)
        {
            await queues.SendStartAsync(new StartBackupMessage(1, $"http-c{i}", i % 2 == 0 ? GraphA : GraphB, "http", null));
        }

        for (var i = 0; i < 2 * Rules.BatchSize; i++)
        {
            await queues.SendStartAsync(new StartBackupMessage(1, $"http-h{i}", GraphA, "http", null));
        }
    }

    [Fact]
    public async Task Up_to_batch_size_plus_new_batch_threshold_invocations_run_at_once()
    {
        var limit = Rules.BatchSize + Rules.NewBatchThreshold;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && LocalHost.InFlight(FunctionNames.StartBackup) < limit)
        {
            await Task.Delay(20);
        }

        var reached = LocalHost.InFlight(FunctionNames.StartBackup);
        Assert.True(reached == limit, $"{reached} invocations in flight after waiting for {limit}");

        // Nothing more starts while that many are in flight (on a slow machine the first held ones may end
        // meanwhile and others take their places: never more than the limit at once).
        await Task.Delay(1500);
        var most = LocalHost.MaxInFlight(FunctionNames.StartBackup);
        Assert.True(most == limit, $"at most {most} invocations were in flight at once; the limit is {limit}");

        // And as GES saw it: never more add-backup calls open at once than the limit — the host's own counters
        // aside. (Fewer is possible on a loaded machine: an invocation may be between its calls.)
        var atGes = State.MaxConcurrent("POST", $"/v2/{DemoSeed.ProjectId}/graphs/{GraphA}/backups");
        Assert.True(atGes > 0 && atGes <= limit, $"GES saw {atGes} add-backup calls open at once; the limit is {limit}");
    }
}
