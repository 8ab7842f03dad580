using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// <c>GET /api/health</c> is anonymous: a flood of it must not turn into a flood of GES calls that queue
/// with the pipeline's, and a dependency that hangs must not hold the answer.
/// </summary>
public sealed class HealthProbeTests : PipelineHarness
{
    private int GesProbeCalls => State.RecordedRequests().Count(r => r.Path.EndsWith("/graphs/jobs", StringComparison.Ordinal));

    [Fact]
    public async Task Four_hundred_concurrent_probes_make_one_ges_call()
    {
        var probes = Enumerable.Range(0, 400).Select(async _ =>
        {
            using var response = await Api.GetAsync("/api/health");
            return response.StatusCode;
        });
        var statuses = await Task.WhenAll(probes);
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(1, GesProbeCalls);
    }

    [Fact]
    public async Task A_cold_start_answers_starting_while_the_first_token_is_fetched_then_healthy_with_one_token_request()
    {
        // The first check since start-up fetches an IAM token; IAM takes 4 s, longer than the probe's 1.5 s.
        State.Faults.Add(new FaultSpec { Path = "/v3/auth/tokens", Kind = "latency", DelayMs = 4_000, Count = 1 });
        var watch = Stopwatch.StartNew();
        using (var first = await Api.GetAsync("/api/health"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            var body = JsonNode.Parse(await first.Content.ReadAsStringAsync())!;
            Assert.Equal("starting", body["status"]!.GetValue<string>());
            Assert.StartsWith("checking", body["huaweiCloud"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(3.5), $"health took {watch.ElapsedMilliseconds} ms");
        }

        // "starting" is not cached: probes meanwhile share the one check in flight, then see its outcome.
        string status;
        do
        {
            await Task.Delay(250);
            using var next = await Api.GetAsync("/api/health");
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
            status = JsonNode.Parse(await next.Content.ReadAsStringAsync())!["status"]!.GetValue<string>();
        }
        while (status == "starting" && watch.Elapsed < TimeSpan.FromSeconds(20));

        Assert.Equal("healthy", status);
        var tokenRequests = State.RecordedRequests().Where(r => r.Path == "/v3/auth/tokens").ToList();
        Assert.True(tokenRequests.Count == 1,
            $"{tokenRequests.Count} token requests: {string.Join("; ", tokenRequests.Select(r => $"{r.Time:HH:mm:ss.fff} {r.Status}"))}\n{Logs.All()}");

        // The emulator records a request once its answer is written, which the app may have read (and reported healthy)
        // a moment before: wait for the record, then count.
        var recorded = Stopwatch.StartNew();
        while (GesProbeCalls == 0 && recorded.Elapsed < TimeSpan.FromSeconds(2))
        {
            await Task.Delay(20);
        }

        Assert.Equal(1, GesProbeCalls);
    }
}

/// <summary>A dependency that stops answering once the app is up (nothing cached, so each probe checks).</summary>
public sealed class HealthProbeHangTests : PipelineHarness
{
    protected override Dictionary<string, string?> ExtraSettings() => new() { ["Http:HealthCacheDuration"] = "00:00:00" };

    [Fact]
    public async Task A_hanging_dependency_is_reported_unhealthy_without_waiting_for_it()
    {
        using (var before = await Api.GetAsync("/api/health"))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        State.Faults.Add(new FaultSpec { Path = "/v2/*/graphs/jobs", Kind = "latency", DelayMs = 20_000, Count = 0 });
        var watch = Stopwatch.StartNew();
        using var response = await Api.GetAsync("/api/health");
        watch.Stop();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("ok", body["storage"]!.GetValue<string>());
        Assert.Contains("no answer within", body["huaweiCloud"]!.GetValue<string>(), StringComparison.Ordinal);

        // Answered at the probe's own timeout, far from the 20 s the dependency would take.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"health took {watch.ElapsedMilliseconds} ms");
    }
}
