using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// A storage account that hangs (connections open, nothing answered) never hangs the API: every route answers
/// within <c>Http__RequestTimeout</c>, 503 with <c>Retry-After</c>, and an unreadable run record is a problem, not a bare 500.
/// </summary>
public sealed class StorageHangTests : PipelineHarness
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(3);

    protected override Task<Azurite> StartAzuriteAsync() => Azurite.StartBehindGatesAsync();

    protected override Dictionary<string, string?> ExtraSettings() => new()
    {
        ["Http:RequestTimeout"] = "00:00:03",
        ["Http:HealthCacheDuration"] = "00:00:00",
    };

    public override async Task DisposeAsync()
    {
        Azurite.Thaw();
        Azurite.Restore();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task Every_route_answers_503_with_retry_after_within_its_bound_while_storage_hangs()
    {
        Azurite.Freeze();
        var routes = new[] { "/api/graphs", $"/api/graphs/{GraphA}", "/api/runs", "/api/runs/some-run", "/api/runs?limit=5" };
        var answers = await Task.WhenAll(routes.Select(async route =>
        {
            var watch = Stopwatch.StartNew();
            using var response = await Api.SendAsync(new HttpRequestMessage(HttpMethod.Get, route) { Headers = { { "x-functions-key", FunctionKey } } });
            var body = await response.Content.ReadAsStringAsync();
            return (Route: route, response.StatusCode, watch.Elapsed, RetryAfter: response.Headers.RetryAfter?.Delta, response.Content.Headers.ContentType?.MediaType, Body: body);
        }));
        foreach (var answer in answers)
        {
            Assert.True(answer.StatusCode == HttpStatusCode.ServiceUnavailable, $"{answer.Route}: {(int)answer.StatusCode} {answer.Body}");
            Assert.True(answer.Elapsed < Bound + TimeSpan.FromSeconds(5), $"{answer.Route} answered after {answer.Elapsed}");
            Assert.NotNull(answer.RetryAfter);
            Assert.Equal("application/problem+json", answer.MediaType);
            Assert.Contains("Http__RequestTimeout", JsonNode.Parse(answer.Body)!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // Storage answers again: so does the API (once the requests held meanwhile have drained: a few seconds on a busy machine).
        Azurite.Thaw();
        var until = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            using var again = await Api.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/api/runs") { Headers = { { "x-functions-key", FunctionKey } } });
            status = again.StatusCode;
        }
        while (status != HttpStatusCode.OK && until.Elapsed < TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task Storage_down_is_503_problem_with_retry_after()
    {
        // Connections reset and refused, as when the account is unreachable.
        Azurite.CutOff();
        var read = Api.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/api/runs/some-run") { Headers = { { "x-functions-key", FunctionKey } } });
        var start = Api.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/graphs/{GraphA}/backups") { Headers = { { "x-functions-key", FunctionKey } } });
        foreach (var response in await Task.WhenAll(read, start))
        {
            using (response)
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Equal(TimeSpan.FromSeconds(BackupRelay.Http.ApiExceptionHandler.RetryAfterSeconds), response.Headers.RetryAfter!.Delta);
                var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                // The SDK's retries against a refused connection, or the route's own bound (Http__RequestTimeout), ends it first.
                Assert.Contains(problem["title"]!.GetValue<string>(), new[] { "Storage unavailable", "Not answered in time" });
                Assert.DoesNotContain("AccountKey", problem.ToJsonString(), StringComparison.Ordinal);
            }
        }

        Azurite.Restore();
    }

    [Fact]
    public async Task An_unreadable_run_record_is_a_problem_naming_the_run()
    {
        await Storage.GetContainer(BackupRelay.Configuration.QueueNames.RunsContainer).GetBlobClient("runs/broken-run.json")
            .UploadAsync(BinaryData.FromString("{\"id\":\"broken-run\",\"status\":"), overwrite: true);
        using var response = await Api.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/api/runs/broken-run") { Headers = { { "x-functions-key", FunctionKey } } });
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("Run record unreadable", problem["title"]!.GetValue<string>());
        Assert.Equal("broken-run", problem["runId"]!.GetValue<string>());
    }
}
