using System.Net;
using System.Text.Json.Nodes;
using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.Messaging;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// What only the Functions host does, played by the strict host double against the custom handler:
/// timer payloads without a schedule status, dropped Logs of failed invocations, keys, routing, and
/// how many invocations of one function run at once.
/// </summary>
public sealed class FunctionsHostContractTests : PipelineHarness
{
    private readonly HoldingFunction.Gate _gate = new();

    public FunctionsHostContractTests() => Decorate = inner => new HoldingFunction(inner, _gate);

    protected override bool UseCustomHandler => true;

    [Fact]
    public async Task A_timer_tick_without_a_schedule_status_queues_every_graph()
    {
        await TickAsync(FunctionsHostDriver.ScheduleStatusShape.Null);
        var runs = await WaitForRunsAsync(2);
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphB), "social");
    }

    [Fact]
    public async Task A_retry_reason_reaches_the_handlers_own_logs_though_the_host_drops_the_invocations_logs()
    {
        _gate.RefuseFirstCopy = true;
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        Assert.Contains(Logs.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning
            && r.Message.Contains("CopyBackupFile will retry (delivery 1): test: the first copy delivery is refused", StringComparison.Ordinal));
        Assert.DoesNotContain(Driver!.HostLogs, l => l.Contains("the first copy delivery is refused", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Keys_open_what_the_host_opens_and_unrouted_requests_are_404()
    {
        async Task<HttpStatusCode> SendAsync(HttpMethod method, string path, string? key)
        {
            using var request = new HttpRequestMessage(method, path);
            if (key is not null)
            {
                request.Headers.Add("x-functions-key", key);
            }

            using var response = await Api.SendAsync(request);
            return response.StatusCode;
        }

        const string run = "/api/runs/0123456789abcdef0123456789abcdef";
        Assert.Equal(HttpStatusCode.NotFound, await SendAsync(HttpMethod.Get, run, Keys.FunctionKeys["GetRun"]));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/api/runs", Keys.FunctionKeys["GetRun"]));
        Assert.Equal(HttpStatusCode.OK, await SendAsync(HttpMethod.Get, "/api/runs", Keys.MasterKey));
        Assert.Equal(HttpStatusCode.OK, await SendAsync(HttpMethod.Get, "/API/Runs", FunctionKey));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/api/runs", null));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/api/runs", "not-a-key"));
        Assert.Equal(HttpStatusCode.OK, await SendAsync(HttpMethod.Get, "/api/health", null));

        // Neither the host nor the handler serves these.
        Assert.Equal(HttpStatusCode.NotFound, await SendAsync(HttpMethod.Delete, "/api/runs", FunctionKey));
        Assert.Equal(HttpStatusCode.NotFound, await SendAsync(HttpMethod.Get, "/api/nowhere", FunctionKey));
    }

    /// <summary>
    /// Copy messages whose run id starts with <c>hold-</c> wait at the gate, <c>fast-</c> ones end at once;
    /// with <see cref="Gate.RefuseFirstCopy"/> the first real copy delivery answers "retry". Everything else
    /// goes to the real function.
    /// </summary>
    internal sealed class HoldingFunction(IQueueFunction inner, HoldingFunction.Gate gate) : IQueueFunction
    {
        public sealed class Gate
        {
            /// <summary>Held now, and the most held at once.</summary>
            public int Held;
            public int MaxHeld;
            public volatile bool RefuseFirstCopy;
            public int Refused;
            public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public string Name => inner.Name;
        public string Queue => inner.Queue;

        public async Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken)
        {
            if (inner.Name != FunctionNames.CopyBackupFile)
            {
                return await inner.HandleAsync(message, dequeueCount, cancellationToken);
            }

            var runId = JsonNode.Parse(message)?["runId"]?.GetValue<string>() ?? "";
            if (runId.StartsWith("fast-", StringComparison.Ordinal))
            {
                return HandlerResult.Done;
            }

            if (runId.StartsWith("hold-", StringComparison.Ordinal))
            {
                var now = Interlocked.Increment(ref gate.Held);
                int seen;
                while (now > (seen = Volatile.Read(ref gate.MaxHeld)) && Interlocked.CompareExchange(ref gate.MaxHeld, now, seen) != seen)
                {
                }

                try
                {
                    await gate.Release.Task.WaitAsync(cancellationToken);
                    return HandlerResult.Done;
                }
                finally
                {
                    Interlocked.Decrement(ref gate.Held);
                }
            }

            if (gate.RefuseFirstCopy && Interlocked.Exchange(ref gate.Refused, 1) == 0)
            {
                return HandlerResult.Retry("test: the first copy delivery is refused");
            }

            return await inner.HandleAsync(message, dequeueCount, cancellationToken);
        }
    }
}

/// <summary>The queue filled before the host starts, so its listener sees full batches.</summary>
public sealed class FunctionsHostConcurrencyTests : PipelineHarness
{
    private static readonly HostQueueOptions Rules = HostQueueOptions.Load(Path.Combine(Azurite.RepositoryRoot(), "host.json"));
    private readonly FunctionsHostContractTests.HoldingFunction.Gate _gate = new();

    public FunctionsHostConcurrencyTests() => Decorate = inner => new FunctionsHostContractTests.HoldingFunction(inner, _gate);

    protected override bool UseCustomHandler => true;

    /// <summary>The first batch: half end at once, so the host fetches a second batch while the rest are held.</summary>
    protected override async Task BeforeHostStartsAsync()
    {
        var queue = Storage.GetQueue(QueueNames.CopyBackupFile);
        await queue.CreateIfNotExistsAsync();
        for (var i = 0; i < Rules.BatchSize; i++)
        {
            await queue.SendMessageAsync($$"""{"v":1,"runId":"{{(i % 2 == 0 ? "hold" : "fast")}}-{{i}}","file":"f"}""");
        }

        for (var i = 0; i < 2 * Rules.BatchSize; i++)
        {
            await queue.SendMessageAsync($$"""{"v":1,"runId":"hold-b{{i}}","file":"f"}""");
        }
    }

    [Fact]
    public async Task Up_to_batch_size_plus_new_batch_threshold_invocations_run_at_once()
    {
        var limit = Rules.BatchSize + Rules.NewBatchThreshold;
        var queue = Services.GetRequiredService<WorkQueues>().Queue(QueueNames.CopyBackupFile);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && Volatile.Read(ref _gate.Held) < limit)
        {
            await Task.Delay(50);
        }

        try
        {
            // Nothing more starts while that many are in flight.
            await Task.Delay(1500);
            Assert.Equal(limit, Volatile.Read(ref _gate.Held));
            Assert.Equal(limit, Driver!.MaxInFlight);
        }
        finally
        {
            _gate.Release.TrySetResult();
        }

        deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount > 0)
        {
            await Task.Delay(100);
        }

        Assert.Equal(0, (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
        Assert.Equal(limit, _gate.MaxHeld);
    }

}
