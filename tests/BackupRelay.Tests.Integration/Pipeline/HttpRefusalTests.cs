using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging.Testing;
using static BackupRelay.Tests.Integration.Pipeline.HttpApiTests;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Requests the API refuses before anything runs (fields, keys, signatures, sizes, routes): each names what it refused, and
/// nothing reaches Huawei Cloud or the run store. None of them changes what the next one meets, so they share one host (a
/// class fixture): a host and worker per request would cost more than every request here together.
/// </summary>
public sealed class HttpRefusalTests(HttpRefusalTests.SharedHost host) : IClassFixture<HttpRefusalTests.SharedHost>
{
    /// <summary>The product as <see cref="HttpApiTests"/> runs it, started once for the class.</summary>
    public sealed class SharedHost : PipelineHarness
    {
        public new HttpClient Api => base.Api;
        public new EmulatorState State => base.State;
        public new RunStore Runs => base.Runs;
        public new FakeLoggerProvider Logs => base.Logs;

        protected override Dictionary<string, string?> ExtraSettings() => HttpApiTests.Settings();
    }

    private const string GraphA = PipelineHarness.GraphA;
    private const string FunctionKey = PipelineHarness.FunctionKey;
    private HttpClient Api => host.Api;
    private EmulatorState State => host.State;
    private RunStore Runs => host.Runs;
    private FakeLoggerProvider Logs => host.Logs;

    [Fact]
    public async Task Function_keys_in_the_query_never_reach_the_logs()
    {
        const string wrong = "wrong-key-in-query-0123456789";
        using (var right = await Api.SendAsync(Request(HttpMethod.Get, $"/api/runs?code={FunctionKey}", sign: false, key: null)))
        {
            Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        }

        using (var bad = await Api.SendAsync(Request(HttpMethod.Get, $"/api/runs/some-run?code={wrong}", sign: false, key: null)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
        }

        var logs = Logs.All();
        Assert.NotEmpty(logs);
        Assert.DoesNotContain(FunctionKey, logs, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, logs, StringComparison.Ordinal);
        Assert.DoesNotContain("code=", logs, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signature_time_beyond_any_date_is_401_not_500()
    {
        var request = Request(HttpMethod.Post, Recovery, """{"name":"x"}""", sign: false);
        request.Headers.Add(WebhookSignature.Header, "t=253402300800,v2=00");
        using var response = await Api.SendAsync(request);
        var problem = await ProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Contains("time window", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(State.Restores);
    }

    [Fact]
    public async Task A_signed_body_that_is_not_UTF8_is_400_naming_the_body()
    {
        byte[] bytes = [(byte)'{', (byte)'"', (byte)'n', (byte)'"', (byte)':', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)'}'];
        var request = new HttpRequestMessage(HttpMethod.Post, Recovery) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Add("x-functions-key", FunctionKey);
        request.Headers.Add(WebhookSignature.Header, WebhookSignature.Sign(Secret, DateTimeOffset.UtcNow, "POST", Recovery, bytes));
        using var response = await Api.SendAsync(request);
        Assert.NotNull((await ProblemAsync(response, HttpStatusCode.BadRequest))["errors"]!["body"]);
        Assert.Empty(State.Restores);
    }

    [Fact]
    public async Task An_id_with_a_trailing_newline_is_refused_and_never_forwarded()
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, $"/api/engines/{DemoSeed.EngineId}%0A/backups/{DemoSeed.EngineBackupId}/recovery", """{"name":"x"}"""));
        Assert.NotNull((await ProblemAsync(response, HttpStatusCode.BadRequest))["errors"]!["engineId"]);
        Assert.DoesNotContain(State.RecordedRequests(), r => r.Path.Contains("/cseengine/", StringComparison.Ordinal));
        using var run = await Api.SendAsync(Request(HttpMethod.Get, "/api/runs/some-run%0A", sign: false));
        Assert.NotNull((await ProblemAsync(run, HttpStatusCode.BadRequest))["errors"]!["runId"]);
    }

    [Theory]
    [InlineData("/api/runs?limit=abc", "limit")]
    [InlineData("/api/runs?limit=99999999999", "limit")]
    [InlineData("/api/runs?limit=0", "limit")]
    [InlineData("/api/runs?status=1", "status")]
    [InlineData("/api/runs/some-run?wait=maybe", "wait")]
    public async Task Bad_query_values_are_problems_naming_the_field(string path, string field)
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Get, path, sign: false));
        Assert.NotNull((await ProblemAsync(response, HttpStatusCode.BadRequest))["errors"]![field]);
    }

    [Theory]
    [InlineData("/api/engines/bad!id/backups/b1/recovery", """{"name":"x"}""", "engineId")]
    [InlineData(Recovery, """{"name":123}""", "name")]
    [InlineData(Recovery, """{"name":""}""", "name")]
    [InlineData(Recovery, """{"description":["a"]}""", "description")]
    [InlineData(Recovery, """{"description":"x","extra":{"tolerated":true}}""", "extra")]
    [InlineData(Recovery, "not json", "body")]
    [InlineData(Recovery, "[1,2]", "body")]
    public async Task Restore_validation_errors_name_the_field(string path, string body, string field)
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, path, body));
        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.NotNull(problem["errors"]![field]);
        Assert.Empty(State.Restores);
    }

    [Fact]
    public async Task Oversized_bodies_are_refused()
    {
        var body = "{\"name\":\"" + new string('x', 70_000) + "\"}";
        using var response = await Api.SendAsync(Request(HttpMethod.Post, Recovery, body));
        await ProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("stale")]
    [InlineData("tampered")]
    public async Task Unsigned_stale_or_tampered_webhooks_get_401_and_nothing_runs(string how)
    {
        var request = how switch
        {
            "missing" => Request(HttpMethod.Post, Recovery, """{"name":"x"}""", sign: false),
            "stale" => Request(HttpMethod.Post, Recovery, """{"name":"x"}""", signedAt: DateTimeOffset.UtcNow.AddMinutes(-10)),
            _ => Request(HttpMethod.Post, Recovery, """{"name":"x"}"""),
        };
        if (how == "tampered")
        {
            request.Content = new StringContent("""{"name":"y"}""", Encoding.UTF8, "application/json");
        }

        using var response = await Api.SendAsync(request);
        await ProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Empty(State.Restores);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-key-0000000000000")]
    public async Task Missing_or_wrong_function_keys_get_401(string? key)
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, Recovery, """{"name":"x"}""", key: key));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Empty(State.Restores);
        using var byQuery = await Api.SendAsync(Request(HttpMethod.Get, $"/api/runs?code={FunctionKey}", sign: false, key: null));
        Assert.Equal(HttpStatusCode.OK, byQuery.StatusCode);
    }

    [Theory]
    [InlineData("{}", "import_path")]
    [InlineData("""{"import_path":"http://elsewhere/x"}""", "import_path")]
    [InlineData("""{"import_path":"Bucket_Upper/x"}""", "import_path")]
    [InlineData("""{"import_path":"bucket/../x"}""", "import_path")]
    [InlineData("""{"import_path":42}""", "import_path")]
    public async Task Import_validation_errors_name_the_field(string body, string field)
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, $"/api/graphs/{GraphA}/backups/import", body));
        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.NotNull(problem["errors"]![field]);
    }

    // Unknown routes and methods, and missing or wrong keys, are the host's answers: the worker never sees them.
    [Theory]
    [InlineData("GET", "/api/nothing-here", HttpStatusCode.NotFound)]
    [InlineData("DELETE", "/api/runs", HttpStatusCode.MethodNotAllowed)]
    public async Task Unknown_routes_and_methods_are_answered_by_the_host(string method, string path, HttpStatusCode status)
    {
        using var response = await Api.SendAsync(Request(new HttpMethod(method), path, sign: false));
        Assert.Equal(status, response.StatusCode);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("not-a-key-0123456789")]
    [InlineData("test-getrun-key-0123456789")]
    public async Task A_function_level_route_without_a_key_that_opens_it_is_401(string? key)
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Get, "/api/runs", sign: false, key: key));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task A_function_key_opens_its_own_function_and_the_master_key_opens_all()
    {
        using var own = await Api.SendAsync(Request(HttpMethod.Get, "/api/runs/no-such-run", sign: false, key: "test-getrun-key-0123456789"));
        Assert.Equal(HttpStatusCode.NotFound, own.StatusCode);
        Assert.Equal("application/problem+json", own.Content.Headers.ContentType?.MediaType);
        using var master = await Api.SendAsync(Request(HttpMethod.Get, "/api/runs", sign: false, key: "test-master-key-0123456789"));
        Assert.Equal(HttpStatusCode.OK, master.StatusCode);
        using var health = await Api.SendAsync(Request(HttpMethod.Get, "/api/health", sign: false, key: null));
        Assert.NotEqual(HttpStatusCode.Unauthorized, health.StatusCode);
    }

    [Fact]
    public async Task A_url_longer_than_the_api_takes_is_414_problem_json_from_the_worker()
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Get, "/api/runs/" + new string('a', HttpApi.MaxUrlLength), sign: false));
        Assert.Equal(HttpStatusCode.RequestUriTooLong, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Every_function_level_route_refuses_a_request_without_a_key_and_nothing_runs()
    {
        // Every HTTP function the published app declares at function level, from what the Functions host reads.
        var metadata = JsonNode.Parse(File.ReadAllText(Path.Combine(WorkerApp.Directory, "functions.metadata")))!.AsArray();
        var routes = metadata.Select(f => f!["bindings"]!.AsArray().Single(b => b!["type"]!.GetValue<string>().EndsWith("Trigger", StringComparison.Ordinal))!)
            .Where(b => b["type"]!.GetValue<string>() == "httpTrigger" && b["authLevel"]?.GetValue<string>() == "Function")
            .SelectMany(b => b["methods"]!.AsArray().Select(m => (Method: m!.GetValue<string>().ToUpperInvariant(), Route: b["route"]!.GetValue<string>())))
            .ToList();
        Assert.True(routes.Count >= 8, $"only {routes.Count} function-level routes found");
        Assert.DoesNotContain(routes, r => r.Route == "health");

        var backupsBefore = State.Backups.Count;
        foreach (var (method, route) in routes)
        {
            var path = "/api/" + route.Replace("{graphId}", GraphA, StringComparison.Ordinal).Replace("{runId}", "some-run", StringComparison.Ordinal)
                .Replace("{engineId}", DemoSeed.EngineId, StringComparison.Ordinal).Replace("{backupId}", DemoSeed.EngineBackupId, StringComparison.Ordinal);
            Assert.DoesNotContain('{', path);
            var body = method == "POST" ? """{"backupId":"0123456789abcdef","obsPath":"obs://bucket/p/","name":"x"}""" : null;
            using var response = await Api.SendAsync(Request(new HttpMethod(method), path, body, sign: body is not null, key: null));
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} answered {(int)response.StatusCode} without a key");
        }

        Assert.Empty(State.Restores);
        Assert.Equal(backupsBefore, State.Backups.Count);
        Assert.Empty(await Runs.ListAsync());
        Assert.DoesNotContain(State.RecordedRequests(), r => r.Method != "GET" && !r.Path.Contains("/auth/tokens", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("{}", "backupId")]
    [InlineData("""{"backupId":"../x"}""", "backupId")]
    [InlineData("""{"backupId":"b1","obsPath":"http://elsewhere/x"}""", "obsPath")]
    [InlineData("""{"backupId":"b1","obsPath":"Bucket_Upper/x/"}""", "obsPath")]
    [InlineData("""{"backupId":"b1","sourceGraph":42}""", "sourceGraph")]
    [InlineData("""{"backupId":"b1","sourceGraph":"orders","backupId":"b2"}""", "backupId")]
    [InlineData("""{"backupId":"b1","acceptUnverifed":true}""", "acceptUnverifed")]
    [InlineData("""{"backupId":"b1","acceptUnverified":"yes"}""", "acceptUnverified")]
    public async Task A_bad_restore_from_a_copy_is_400_naming_the_field(string body, string field)
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, $"/api/graphs/{PipelineHarness.GraphB}/restores", body));
        Assert.NotNull((await ProblemAsync(response, HttpStatusCode.BadRequest))["errors"]![field]);
    }

    [Fact]
    public async Task An_unsigned_restore_from_a_copy_is_401_and_nothing_runs()
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, $"/api/graphs/{PipelineHarness.GraphB}/restores", """{"backupId":"b1"}""", sign: false));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Empty(await Runs.ListAsync());
    }
}
