using System.Diagnostics;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.HuaweiCloud;

public sealed class ResilienceTests : ClientHarness
{
    protected override Dictionary<string, string?> Settings(Uri emulator) => new()
    {
        ["Resilience:MaxRetryAttempts"] = "3",
        ["Resilience:AttemptTimeout"] = "00:00:01.500",
    };

    private const string Graph = $"/v2/*/graphs/{DemoSeed.GraphId}";

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    [InlineData(408)]
    public async Task Transient_statuses_are_retried_until_success(int status)
    {
        Fault(new FaultSpec { Method = "GET", Path = Graph, Kind = "status", Status = status, Count = 2 });
        Assert.Equal(DemoSeed.GraphId, (await Ges.GetGraphAsync(DemoSeed.GraphId)).Id);
        Assert.Equal([status, status, 200], Requests("GET", $"/graphs/{DemoSeed.GraphId}").Select(r => r.Status));
    }

    [Fact]
    public async Task Engine_errors_reported_as_400_GES_7006_are_retried()
    {
        Fault(new FaultSpec { Method = "GET", Path = Graph, Kind = "status", Status = 400, ErrorCode = "GES.7006", Count = 1 });
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        Assert.Equal(2, Requests("GET", $"/graphs/{DemoSeed.GraphId}").Count);
    }

    [Fact]
    public async Task Retries_are_bounded_and_end_with_a_clear_error()
    {
        Fault(new FaultSpec { Method = "GET", Path = Graph, Kind = "status", Status = 503, Count = 0 });
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
        Assert.Equal(HuaweiCloudErrorKind.Transient, error.Kind);
        Assert.Equal(503, (int)error.StatusCode!);
        Assert.Equal("APIG.0201", error.ErrorCode);
        Assert.Equal(4, Requests("GET", $"/graphs/{DemoSeed.GraphId}").Count);
    }

    [Fact]
    public async Task Throttling_honours_retry_after()
    {
        Fault(new FaultSpec { Method = "GET", Path = Graph, Kind = "status", Status = 429, RetryAfterSeconds = 1, Count = 1 });
        var watch = Stopwatch.StartNew();
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(950), $"retried after {watch.ElapsedMilliseconds} ms");
        Assert.Equal([429, 200], Requests("GET", $"/graphs/{DemoSeed.GraphId}").Select(r => r.Status));
    }

    [Fact]
    public async Task Throttling_that_persists_surfaces_as_throttled_with_retry_after()
    {
        Fault(new FaultSpec { Method = "GET", Path = Graph, Kind = "status", Status = 429, RetryAfterSeconds = 0, Count = 0 });
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
        Assert.Equal(HuaweiCloudErrorKind.Throttled, error.Kind);
        Assert.Equal("APIG.0308", error.ErrorCode);
        Assert.Equal(TimeSpan.Zero, error.RetryAfter);
        Assert.Equal(4, Requests("GET", $"/graphs/{DemoSeed.GraphId}").Count);
    }

    [Fact]
    public async Task Slow_attempts_time_out_and_are_retried()
    {
        Fault(new FaultSpec { Method = "GET", Path = Graph, Kind = "latency", DelayMs = 5000, Count = 1 });
        Assert.Equal(DemoSeed.GraphId, (await Ges.GetGraphAsync(DemoSeed.GraphId)).Id);

        // The first attempt was abandoned at its timeout and retried (the emulator records the slow one
        // only when it ends); the timing itself is proven on a fake clock in ResiliencePipelineTests.
        Assert.Single(Logs.Lines(), l => l.Contains("Retrying ges GET", StringComparison.Ordinal));
        Assert.Contains(Logs.Lines(), l => l.Contains("Retrying ges GET", StringComparison.Ordinal) && l.Contains("TimeoutRejectedException", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Dropped_connections_are_retried_for_reads()
    {
        Fault(new FaultSpec { Method = "GET", Path = Graph, Kind = "drop", Count = 2 });
        Assert.Equal(DemoSeed.GraphId, (await Ges.GetGraphAsync(DemoSeed.GraphId)).Id);

        // Two attempts were dropped, the third answered: three requests reached the emulator, and two retries were logged.
        Assert.Equal(3, Requests("GET", $"/graphs/{DemoSeed.GraphId}").Count);
        Assert.Equal(2, Logs.Lines().Count(l => l.Contains("Retrying ges GET", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Add_backup_is_sent_once_even_after_a_timeout()
    {
        // The attempt is slow: the client gives up on it and says so, without sending add-backup again — a second one
        // would start a second backup once the first had ended (the handler looks for the backup the attempt started).
        Fault(new FaultSpec { Method = "POST", Path = "/v2/*/backups", Kind = "latency", DelayMs = 3000, Count = 1 });
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.AddBackupAsync(DemoSeed.GraphId));
        Assert.Equal(HuaweiCloudErrorKind.Transient, error.Kind);
        var deadline = Stopwatch.StartNew();
        // The emulator records a request once its answer is written, after the backup is in its state: wait for that.
        while (Requests("POST", "/backups").Count == 0 && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20);
        }

        // The slow attempt reached GES (its answer went nowhere): one request, one backup.
        Assert.Single(Requests("POST", "/backups"));
        Assert.Single(State.Backups);
        Assert.Single(State.Jobs);
    }

    [Fact]
    public async Task Import_is_not_retried_after_a_server_error_but_is_after_throttling()
    {
        Fault(new FaultSpec { Method = "POST", Path = "/v2/*/import", Kind = "status", Status = 500, Count = 1 });
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.ImportBackupAsync(DemoSeed.GraphId, "b/p/"));
        Assert.Equal(HuaweiCloudErrorKind.Transient, error.Kind);
        Assert.Single(Requests("POST", "/import"));

        Fault(new FaultSpec { Method = "POST", Path = "/v2/*/import", Kind = "status", Status = 429, RetryAfterSeconds = 0, Count = 1 });
        await Ges.ImportBackupAsync(DemoSeed.GraphId, "b/p/");
        Assert.Equal(3, Requests("POST", "/import").Count);
    }

    [Fact]
    public async Task Invalid_requests_are_not_retried()
    {
        await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetDownloadLinksAsync(DemoSeed.GraphId, "unknown-backup"));
        Assert.Single(Requests("GET", "/backup-files"));
    }
}

public sealed class CircuitBreakerTests : ClientHarness
{
    protected override Dictionary<string, string?> Settings(Uri emulator) => new()
    {
        ["Resilience:MaxRetryAttempts"] = "0",
        ["Resilience:BreakMinimumThroughput"] = "4",
        ["Resilience:BreakFailureRatio"] = "0.5",
        ["Resilience:BreakDuration"] = "00:00:30",
    };

    [Fact]
    public async Task Repeated_failures_open_the_circuit_and_calls_fail_fast_without_reaching_the_service()
    {
        Fault(new FaultSpec { Path = "/v2/*", Kind = "status", Status = 503, Count = 0 });
        for (var i = 0; i < 4; i++)
        {
            await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
        }

        var reached = Requests("GET", "/graphs/").Count;
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
        Assert.Contains("circuit open", error.Message, StringComparison.Ordinal);
        Assert.Equal(HuaweiCloudErrorKind.Transient, error.Kind);
        Assert.Equal(reached, Requests("GET", "/graphs/").Count);
    }
}

public sealed class RateLimitTests : ClientHarness
{
    protected override Dictionary<string, string?> Settings(Uri emulator) => new() { ["Resilience:RequestsPerSecond"] = "10" };

    [Fact]
    public async Task A_fan_out_is_held_to_the_configured_rate()
    {
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Ges.GetGraphAsync(DemoSeed.GraphId)));

        // A bucket of 10 refilled by 10 once a second: 40 calls wait for three refills, the first up to
        // a second away and then one a second, so more than 2 s whatever the phase.
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1.9), $"40 calls took {watch.ElapsedMilliseconds} ms");
        Assert.DoesNotContain(Requests("GET", "/graphs/"), r => r.Status == 429);
    }
}

/// <summary>A wrong endpoint: one short line per failed attempt naming the setting, never a stack trace or the framework's request lines.</summary>
public sealed class WrongEndpointTests : ClientHarness
{
    protected override Dictionary<string, string?> Settings(Uri emulator) => new() { ["Endpoints:Ges"] = "http://127.0.0.1:9/" };

    [Fact]
    public async Task A_closed_endpoint_is_one_line_per_attempt_naming_its_setting()
    {
        await Assert.ThrowsAnyAsync<Exception>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
        var lines = Logs.Collector.GetSnapshot().Select(r => $"{r.Category} {r.Message} {r.Exception}").ToList();
        Assert.DoesNotContain(lines, l => l.Contains("   at ", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith("Polly", StringComparison.Ordinal) || l.StartsWith("System.Net.Http.HttpClient", StringComparison.Ordinal));
        var retries = lines.Where(l => l.Contains("Retrying ges GET", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(retries);
        Assert.All(retries, l => Assert.Contains("HttpRequestException ConnectionError", l, StringComparison.Ordinal));
        Assert.All(retries, l => Assert.Contains("endpoint setting HuaweiCloud__Endpoints__Ges", l, StringComparison.Ordinal));
        Assert.True(lines.Count <= retries.Count + 4, string.Join("\n", lines));
    }
}
