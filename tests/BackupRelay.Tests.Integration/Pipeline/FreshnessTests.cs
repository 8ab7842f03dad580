using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Notifications;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// A graph whose backups keep failing turns <c>Stale</c> on <c>/api/graphs</c> and degrades
/// <c>/api/health</c>, and the outgoing webhook tells a receiver that checks every signature: each run
/// that ended, and the graph turning stale, once per event id, after a refused first delivery too.
/// </summary>
public sealed class FreshnessTests : PipelineHarness
{
    private const string Secret = "notify-secret-0123456789abcdef";
    private WebApplication? _receiver;
    private string _receiverUrl = "";
    private int _refusedOnce;

    /// <summary>Every delivery the receiver got: event id, the event, and whether its signature was valid.</summary>
    private readonly ConcurrentQueue<(string Id, JsonNode Event, string? SignatureProblem, int Status)> _deliveries = new();

    protected override async Task BeforeHostStartsAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _receiver = builder.Build();
        _receiver.MapPost("/hook", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            var problem = WebhookSignature.Check(Secret, context.Request.Headers[WebhookSignature.Header], DateTimeOffset.UtcNow,
                TimeSpan.FromMinutes(5), context.Request.Method, (context.Request.Path + context.Request.QueryString).ToString(), body.ToArray(),
                acceptLegacy: false, out _);
            var id = context.Request.Headers[NotifyHandler.EventIdHeader].ToString();

            // The first delivery of all is refused: it must come again.
            var status = Interlocked.Exchange(ref _refusedOnce, 1) == 0 ? 500 : problem is null ? 204 : 401;
            _deliveries.Enqueue((id, JsonNode.Parse(body.ToArray())!, problem, status));
            return Results.StatusCode(status);
        });
        await _receiver.StartAsync();
        _receiverUrl = _receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hook";
    }

    protected override Dictionary<string, string?> ExtraSettings() => new()
    {
        ["Backup:Graphs:0:FreshnessThreshold"] = "00:00:04",
        ["Http:HealthCacheDuration"] = "00:00:00",
        ["Notify:Url"] = _receiverUrl,
        ["Notify:Secret"] = Secret,
    };

    private async Task<JsonNode> GetAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("x-functions-key", FunctionKey);
        using var response = await Api.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    [Fact]
    public async Task A_graph_whose_backups_fail_turns_stale_on_graphs_and_health_and_the_receiver_is_told()
    {
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{GraphA}/backups", Kind = "failJob", Reason = "disk full", Count = 0 });
        await TickAsync();
        await WaitForRunsAsync(2);

        // Graph A never had a verified copy: stale 4 s after it was first seen.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonNode a;
        do
        {
            await Task.Delay(250);
            a = await GetAsync($"/api/graphs/{GraphA}");
        }
        while (DateTime.UtcNow < deadline && a["state"]!.GetValue<string>() != "Stale");

        Assert.Equal("Stale", a["state"]!.GetValue<string>());
        Assert.Equal("Failed", a["lastRun"]!["status"]!.GetValue<string>());
        Assert.Null(a["lastVerifiedCopy"]);
        Assert.NotNull(a["staleSince"]);
        Assert.Equal("0 0 2 * * *", a["schedule"]!.GetValue<string>());
        Assert.NotNull(a["nextOccurrence"]);

        var all = (await GetAsync("/api/graphs")).AsArray();
        Assert.Equal(2, all.Count);
        var b = all.Single(g => g!["graphId"]!.GetValue<string>() == GraphB)!;
        Assert.Equal("Fresh", b["state"]!.GetValue<string>());
        Assert.Equal(2, b["lastVerifiedCopy"]!["files"]!.GetValue<int>());
        Assert.Equal((Block * 5) + 77 + 1, b["lastVerifiedCopy"]!["bytes"]!.GetValue<long>());

        using (var health = await Api.GetAsync("/api/health"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            var body = JsonNode.Parse(await health.Content.ReadAsStringAsync())!;
            Assert.Equal("degraded", body["status"]!.GetValue<string>());
            Assert.Equal([GraphA], body["staleGraphs"]!.AsArray().Select(g => g!.GetValue<string>()));
        }

        // The receiver: both runs' ends and A turning stale, each signed, each delivered once (after the refusal).
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && _deliveries.Where(d => d.Status == 204).Select(d => d.Id).Distinct().Count() < 3)
        {
            await Task.Delay(200);
        }

        var delivered = _deliveries.ToList();
        Assert.All(delivered, d => Assert.Null(d.SignatureProblem));
        var accepted = delivered.Where(d => d.Status == 204).ToList();
        Assert.Equal(accepted.Count, accepted.Select(d => d.Id).Distinct().Count());
        Assert.Contains(accepted, d => d.Event["type"]!.GetValue<string>() == "run.finished"
            && d.Event["run"]!["graphId"]!.GetValue<string>() == GraphA && d.Event["run"]!["status"]!.GetValue<string>() == "Failed"
            && d.Event["run"]!["errors"]!.ToJsonString().Contains("disk full", StringComparison.Ordinal));
        // Each ended backup says what its copy proves: the succeeded one verified, the failed one incomplete.
        Assert.Contains(accepted, d => d.Event["type"]!.GetValue<string>() == "run.finished" && d.Event["run"]!["graphId"]!.GetValue<string>() == GraphB
            && d.Event["run"]!["status"]!.GetValue<string>() == "Succeeded" && d.Event["run"]!["copy"]!["level"]!.GetValue<string>() == "verified");
        Assert.Contains(accepted, d => d.Event["type"]!.GetValue<string>() == "run.finished" && d.Event["run"]!["graphId"]!.GetValue<string>() == GraphA
            && d.Event["run"]!["copy"]!["level"]!.GetValue<string>() == "incomplete");
        Assert.Contains(accepted, d => d.Event["type"]!.GetValue<string>() == "graph.stale" && d.Event["graph"]!["graphId"]!.GetValue<string>() == GraphA);
        var refused = delivered.First();
        Assert.Equal(500, refused.Status);
        Assert.Contains(accepted, d => d.Id == refused.Id);
        Assert.All(delivered, d => Assert.Equal(d.Id, d.Event["id"]!.GetValue<string>()));
        foreach (var secret in new[] { "Signature=", "AccessKeyId=", DemoSeed.Password, Secret })
        {
            Assert.DoesNotContain(secret, string.Join("\n", delivered.Select(d => d.Event.ToJsonString())), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Graph_requests_are_validated()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/graphs/0123456789abcdef0123456789abcdef");
        request.Headers.Add("x-functions-key", FunctionKey);
        using var unknown = await Api.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("application/problem+json", unknown.Content.Headers.ContentType?.MediaType);

        using var bad = new HttpRequestMessage(HttpMethod.Get, "/api/graphs/bad!id");
        bad.Headers.Add("x-functions-key", FunctionKey);
        using var invalid = await Api.SendAsync(bad);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("graphId", await invalid.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_receiver is not null)
        {
            await _receiver.DisposeAsync();
        }
    }
}
