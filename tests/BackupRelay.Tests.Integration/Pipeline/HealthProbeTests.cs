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
    public async Task A_hanging_dependency_is_reported_unhealthy_without_waiting_for_it()
    {
        State.Faults.Add(new FaultSpec { Path = "/v2/*/graphs/jobs", Kind = "latency", DelayMs = 20_000, Count = 0 });
        var watch = Stopwatch.StartNew();
        using var response = await Api.GetAsync("/api/health");
        watch.Stop();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("ok", body["storage"]!.GetValue<string>());
        Assert.Contains("no answer within", body["huaweiCloud"]!.GetValue<string>(), StringComparison.Ordinal);

        // Answered at the probe's own timeout, far from the 20 s the dependency would take.
        await File.AppendAllTextAsync(Path.Combine(Path.GetTempPath(), "backuprelay-health-ms.txt"), $"{watch.ElapsedMilliseconds}\n");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"health took {watch.ElapsedMilliseconds} ms");
    }
}
