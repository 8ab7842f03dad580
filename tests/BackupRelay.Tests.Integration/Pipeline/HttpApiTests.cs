using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BackupRelay.Configuration;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Every route through the local host to the worker: happy paths to the run's end, signatures, upstream errors. Requests the
/// API refuses before anything runs are <see cref="HttpRefusalTests"/>, on one host for them all.
/// </summary>
public sealed class HttpApiTests : PipelineHarness
{
    internal const string Secret = "webhook-secret-for-tests";
    internal const string Recovery = $"/api/engines/{DemoSeed.EngineId}/backups/{DemoSeed.EngineBackupId}/recovery";

    /// <summary>The webhook secret, and health probed at every call (no cache): the health test turns a dependency bad between two calls.</summary>
    internal static Dictionary<string, string?> Settings() => new() { ["Http:WebhookSecret"] = Secret, ["Http:HealthCacheDuration"] = "00:00:00" };

    protected override Dictionary<string, string?> ExtraSettings() => Settings();

    /// <summary>Sends <paramref name="path"/> with a signature made for <paramref name="signedPath"/> (method and body as given).</summary>
    private async Task<HttpResponseMessage> SendSignedForAsync(string path, string signedPath, string body, string? header = null)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Add("x-functions-key", FunctionKey);
        request.Headers.Add(WebhookSignature.Header, header ?? WebhookSignature.Sign(Secret, DateTimeOffset.UtcNow, "POST", signedPath, bytes));
        return await Api.SendAsync(request);
    }

    [Fact]
    public async Task A_signed_request_resent_to_another_path_or_query_or_a_second_time_is_401_and_nothing_runs()
    {
        const string body = """{"name":"drill"}""";
        const string otherBackup = $"/api/engines/{DemoSeed.EngineId}/backups/0123456789abcdef0123456789abcdef/recovery";

        // Signed for one backup, sent to another.
        using (var moved = await SendSignedForAsync(otherBackup, Recovery, body))
        {
            Assert.Contains("does not match", (await ProblemAsync(moved, HttpStatusCode.Unauthorized))["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // Signed without a query, sent with one.
        using (var queried = await SendSignedForAsync(Recovery + "?force=true", Recovery, body))
        {
            await ProblemAsync(queried, HttpStatusCode.Unauthorized);
        }

        // The legacy body-only scheme is refused unless a setting asks for it.
        using (var legacy = await SendSignedForAsync(Recovery, Recovery, body, WebhookSignature.SignLegacy(Secret, DateTimeOffset.UtcNow, Encoding.UTF8.GetBytes(body))))
        {
            Assert.Contains("v1 signatures", (await ProblemAsync(legacy, HttpStatusCode.Unauthorized))["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        Assert.Empty(State.Restores);

        // The real one runs once; the same signed request again is a replay.
        var header = WebhookSignature.Sign(Secret, DateTimeOffset.UtcNow, "POST", Recovery, Encoding.UTF8.GetBytes(body));
        using (var first = await SendSignedForAsync(Recovery, Recovery, body, header))
        {
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        }

        using (var replay = await SendSignedForAsync(Recovery, Recovery, body, header))
        {
            Assert.Contains("already accepted", (await ProblemAsync(replay, HttpStatusCode.Unauthorized))["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && State.Restores.Count == 0)
        {
            await Task.Delay(100);
        }

        Assert.Single(State.Restores);
    }

    [Fact]
    public async Task A_query_is_signed_in_canonical_order_and_the_function_key_is_left_out()
    {
        // Signed as "?b=2&a=x%20y", sent as "?a=x+y&code=...&b=2": the same canonical target.
        const string body = """{"name":"query-order"}""";
        using var response = await SendSignedForAsync($"{Recovery}?a=x+y&code={FunctionKey}&b=2", Recovery + "?b=2&a=x%20y", body);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }

    internal static HttpRequestMessage Request(HttpMethod method, string path, string? body = null, bool sign = true, DateTimeOffset? signedAt = null,
        string? key = FunctionKey)
    {
        var request = new HttpRequestMessage(method, path);
        if (key is not null)
        {
            request.Headers.Add("x-functions-key", key);
        }

        var bytes = Encoding.UTF8.GetBytes(body ?? "");
        if (body is not null)
        {
            request.Content = new ByteArrayContent(bytes);
            request.Content.Headers.ContentType = new("application/json");
        }

        if (sign)
        {
            request.Headers.Add(WebhookSignature.Header, WebhookSignature.Sign(Secret, signedAt ?? DateTimeOffset.UtcNow, method.Method, path, bytes));
        }

        return request;
    }

    internal static async Task<JsonNode> ProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    private async Task<RunRecord> WaitAsync(HttpResponseMessage accepted, HttpStatusCode final)
    {
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(HttpApi.RetryAfterSeconds), accepted.Headers.RetryAfter!.Delta);
        var location = accepted.Headers.Location!.ToString();
        Assert.StartsWith("/api/runs/", location, StringComparison.Ordinal);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            using var response = await Api.SendAsync(Request(HttpMethod.Get, location + "?wait=true", sign: false));
            if (response.StatusCode != HttpStatusCode.Accepted)
            {
                Assert.Equal(final, response.StatusCode);
                using var read = await Api.SendAsync(Request(HttpMethod.Get, location, sign: false));
                Assert.Equal(HttpStatusCode.OK, read.StatusCode);
                return JsonSerializer.Deserialize(await read.Content.ReadAsStringAsync(), RunRecordJson.Default.RunRecord)!;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the run did not finish");
    }

    [Fact]
    public async Task Restore_runs_to_success_and_a_second_one_meanwhile_is_409()
    {
        using var accepted = await Api.SendAsync(Request(HttpMethod.Post, Recovery, """{"description":"drill"}"""));
        using var second = await Api.SendAsync(Request(HttpMethod.Post, Recovery, """{"name":"again"}"""));
        var conflict = await ProblemAsync(second, HttpStatusCode.Conflict);
        Assert.Equal("CSE.00400002", conflict["upstreamCode"]!.GetValue<string>());
        var run = await WaitAsync(accepted, HttpStatusCode.OK);
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal(RunKind.EngineRestore, run.Kind);
        Assert.Equal(DemoSeed.EngineId, run.EngineId);
        Assert.StartsWith("relay-", State.Restores[0].Name, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_restore_is_never_a_2xx_on_the_wait_call()
    {
        State.Engines[DemoSeed.EngineId].RestoreOutcome = "RestartingServiceFailed";
        using var accepted = await Api.SendAsync(Request(HttpMethod.Post, Recovery, """{"name":"doomed"}"""));
        var run = await WaitAsync(accepted, HttpStatusCode.InternalServerError);
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Contains("Error", run.Errors.Single().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_engine_maps_to_404_with_the_upstream_code()
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, "/api/engines/no-such-engine/backups/b1/recovery", """{"name":"x"}"""));
        var problem = await ProblemAsync(response, HttpStatusCode.NotFound);
        Assert.Equal("CSE.00404001", problem["upstreamCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Huawei_cloud_failing_maps_to_503()
    {
        State.Faults.Add(new FaultSpec { Path = "/cseengine/*", Kind = "status", Status = 503, Count = 0 });
        using var response = await Api.SendAsync(Request(HttpMethod.Post, Recovery, """{"name":"x"}"""));
        var problem = await ProblemAsync(response, HttpStatusCode.ServiceUnavailable);
        Assert.Equal("APIG.0201", problem["upstreamCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Huawei_cloud_refusing_our_credentials_maps_to_502_with_no_secret()
    {
        // IAM turns the token request down, as it does for a wrong or locked password.
        State.Faults.Add(new FaultSpec { Method = "POST", Path = "/v3/auth/tokens", Kind = "status", Status = 401, Count = 0,
            ErrorCode = "IAM.0101", ErrorMessage = "The username or password is wrong." });
        using var response = await Api.SendAsync(Request(HttpMethod.Post, Recovery, """{"name":"x"}"""));
        var body = await response.Content.ReadAsStringAsync();
        var problem = await ProblemAsync(response, HttpStatusCode.BadGateway);
        Assert.Equal("IAM.0101", problem["upstreamCode"]!.GetValue<string>());
        Assert.Equal(401, problem["upstreamStatus"]!.GetValue<int>());
        Assert.DoesNotContain(DemoSeed.Password, body, StringComparison.Ordinal);
        Assert.DoesNotContain(State.RecordedRequests(), r => r.Path.Contains("/cseengine/", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("obs://import-bucket/graphs/orders/")]
    [InlineData("import-bucket/graphs/orders/")]
    public async Task Import_runs_to_success_in_either_path_form(string path)
    {
        // What GES finds at the path: a backup exported there.
        lock (State.Sync)
        {
            var backup = new Backup
            {
                Id = EmulatorState.NewId(), Name = "orders-exported", GraphId = GraphB, GraphName = "social", ProjectId = DemoSeed.ProjectId,
                BackupMethod = "manual", Status = "success", StartTime = State.Now.AddHours(-1), EndTime = State.Now.AddMinutes(-50),
                Files = EmulatorState.FilesFor("exported", [1000, 17]),
            };
            State.Backups.Add(backup);
            State.WriteBackupToObs(backup, "import-bucket/graphs/orders/");
        }

        using var accepted = await Api.SendAsync(Request(HttpMethod.Post, $"/api/graphs/{GraphA}/backups/import", $$"""{"import_path":"{{path}}"}"""));
        var run = await WaitAsync(accepted, HttpStatusCode.OK);
        Assert.Equal(RunKind.Import, run.Kind);
        Assert.Equal("import-bucket/graphs/orders/", run.ImportPath);
        Assert.Equal("import", State.Backups.Single(b => b.Id == run.BackupId).BackupMethod);
    }

    [Fact]
    public async Task Import_into_an_unknown_graph_maps_the_ges_error()
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, "/api/graphs/no-such-graph/backups/import", """{"import_path":"bucket/x/"}"""));
        var problem = await ProblemAsync(response, HttpStatusCode.NotFound);
        Assert.Equal("GES.7000", problem["upstreamCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Backup_now_goes_through_the_pipeline_and_an_idempotency_key_starts_it_once()
    {
        var first = Request(HttpMethod.Post, $"/api/graphs/{GraphB}/backups", sign: false);
        first.Headers.Add("Idempotency-Key", "deploy-42");
        var again = Request(HttpMethod.Post, $"/api/graphs/{GraphB}/backups", sign: false);
        again.Headers.Add("Idempotency-Key", "deploy-42");
        using var accepted = await Api.SendAsync(first);
        using var duplicate = await Api.SendAsync(again);
        Assert.Equal(accepted.Headers.Location, duplicate.Headers.Location);
        var run = await WaitAsync(accepted, HttpStatusCode.OK);
        Assert.Equal("http", run.Trigger);
        await AssertCopiedAsync(run, "social");
        Assert.Single(State.Backups, b => b.GraphId == GraphB);
    }

    [Fact]
    public async Task Runs_that_adopt_the_same_backup_share_one_copy()
    {
        // Five keyless requests at once: five runs, one GES backup (the others adopt it), copied once.
        var responses = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Api.SendAsync(Request(HttpMethod.Post, $"/api/graphs/{GraphA}/backups", sign: false))));
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        var runs = await WaitForRunsAsync(5, TimeSpan.FromSeconds(90));
        Assert.Equal(5, runs.Count);
        Assert.All(runs, r => Assert.Equal(RunStatus.Succeeded, r.Status));
        var backup = Assert.Single(State.Backups, b => b.GraphId == GraphA);
        Assert.All(runs, r => Assert.Equal(backup.Id, r.BackupId));

        var copier = Assert.Single(runs, r => r.FollowsRunId is null);
        Assert.All(runs.Where(r => r != copier), r =>
        {
            Assert.Equal(copier.Id, r.FollowsRunId);
            Assert.Equal(copier.Files.Select(f => (f.Name, f.Md5, f.Sha256)), r.Files.Select(f => (f.Name, f.Md5, f.Sha256)));
        });
        await AssertCopiedAsync(copier, "orders");

        // Each file was downloaded once (one ranged request per block of the one copy; an empty file is one request),
        // and the manifest names the run that copied it.
        Assert.All(copier.Files, f => Assert.Equal(Math.Max(1, (f.Size!.Value + Block - 1) / Block), State.RecordedRequests().Count(r => r.Method == "GET"
            && r.Path.StartsWith("/obs/", StringComparison.Ordinal) && r.Path.EndsWith("/" + f.Name, StringComparison.Ordinal))));
        var manifest = (await Destination.GetBlobClient($"orders/{backup.Id}/{BackupRelay.Copying.CopyBackupFileHandler.ManifestName}").DownloadContentAsync()).Value;
        Assert.Equal(copier.Id, JsonNode.Parse(manifest.Content.ToString())!["runId"]!.GetValue<string>());
    }

    [Fact]
    public async Task Backup_now_of_an_unconfigured_graph_is_404()
    {
        using var response = await Api.SendAsync(Request(HttpMethod.Post, "/api/graphs/not-configured/backups", sign: false));
        await ProblemAsync(response, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task An_unreadable_run_record_is_skipped_and_reported_not_a_500_everywhere()
    {
        await TickAsync();
        await WaitForRunsAsync(2);

        // One real record truncated by a bad write, and an operator's note beside the records (not in the run index).
        var container = Storage.GetContainer(QueueNames.RunsContainer);
        var truncated = (await Runs.ListAsync(GraphA)).Single().Id;
        await container.GetBlobClient($"runs/{truncated}.json").UploadAsync(BinaryData.FromString("""{"id":"truncated","graphId":"""), overwrite: true);
        await container.GetBlobClient("runs/note.json").UploadAsync(BinaryData.FromString("checked by ops on Monday"));

        using (var runs = await Api.SendAsync(Request(HttpMethod.Get, "/api/runs", sign: false)))
        {
            Assert.Equal(HttpStatusCode.OK, runs.StatusCode);
            Assert.Equal(GraphB, Assert.Single(JsonNode.Parse(await runs.Content.ReadAsStringAsync())!.AsArray())!["graphId"]!.GetValue<string>());
        }

        using (var graphs = await Api.SendAsync(Request(HttpMethod.Get, "/api/graphs", sign: false)))
        {
            Assert.Equal(HttpStatusCode.OK, graphs.StatusCode);
            Assert.All(JsonNode.Parse(await graphs.Content.ReadAsStringAsync())!.AsArray(), g => Assert.Equal("Fresh", g!["state"]!.GetValue<string>()));
        }

        using (var health = await Api.SendAsync(Request(HttpMethod.Get, "/api/health", sign: false, key: null)))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }

        Assert.Contains(Logs.Collector.GetSnapshot(), r => r.Message.Contains($"Run record runs/{truncated}.json cannot be read", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Runs_are_read_and_listed_with_filters()
    {
        await TickAsync();
        await WaitForRunsAsync(2);
        using var list = await Api.SendAsync(Request(HttpMethod.Get, $"/api/runs?graphId={GraphA}&status=succeeded&limit=5", sign: false));
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        var runs = JsonNode.Parse(await list.Content.ReadAsStringAsync())!.AsArray();
        Assert.Equal(GraphA, Assert.Single(runs)!["graphId"]!.GetValue<string>());
        using var missing = await Api.SendAsync(Request(HttpMethod.Get, "/api/runs/no-such-run", sign: false));
        await ProblemAsync(missing, HttpStatusCode.NotFound);
        using var badStatus = await Api.SendAsync(Request(HttpMethod.Get, "/api/runs?status=finished", sign: false));
        Assert.NotNull((await ProblemAsync(badStatus, HttpStatusCode.BadRequest))["errors"]!["status"]);
    }

    [Fact]
    public async Task Health_reports_storage_and_huawei_cloud()
    {
        using var healthy = await Api.SendAsync(Request(HttpMethod.Get, "/api/health", sign: false, key: null));
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        Assert.Equal("healthy", JsonNode.Parse(await healthy.Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
        State.Faults.Add(new FaultSpec { Path = "/v2/*", Kind = "status", Status = 401, Count = 0, ErrorCode = "APIG.0301", ErrorMessage = "no" });
        using var sick = await Api.SendAsync(Request(HttpMethod.Get, "/api/health", sign: false, key: null));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, sick.StatusCode);
        Assert.Contains("Auth", JsonNode.Parse(await sick.Content.ReadAsStringAsync())!["huaweiCloud"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_backup_now_whose_start_cannot_be_sent_leaves_no_queued_run_and_a_retry_runs_it()
    {
        // The start queue is gone (its service failing): the send fails. The worker's start-up checks create
        // every queue once, possibly still running when the test starts: delete until it stays gone for a second.
        var queue = Storage.GetQueue(QueueNames.StartBackup);
        do
        {
            await queue.DeleteIfExistsAsync();
            await Task.Delay(1000);
        }
        while ((await queue.ExistsAsync()).Value);

        using var failed = await Api.SendAsync(BackupNow());
        Assert.True(failed.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)failed.StatusCode}: {await failed.Content.ReadAsStringAsync()}");
        Assert.Empty(await Runs.ListAsync());

        // The same request again once the queue is back: one run, and it runs to the end.
        await Storage.GetQueue(QueueNames.StartBackup).CreateIfNotExistsAsync();
        using var accepted = await Api.SendAsync(BackupNow());
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var run = Assert.Single(await WaitForRunsAsync(1));
        Assert.Equal(BackupRelay.Runs.RunStatus.Succeeded, run.Status);
        Assert.Equal(accepted.Headers.Location!.ToString(), $"/api/runs/{run.Id}");

        static HttpRequestMessage BackupNow()
        {
            var request = Request(HttpMethod.Post, $"/api/graphs/{GraphA}/backups", sign: false);
            request.Headers.Add("Idempotency-Key", "outage-retry-1");
            return request;
        }
    }
}
