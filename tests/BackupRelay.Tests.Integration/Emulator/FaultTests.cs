using System.Diagnostics;
using System.Net;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Emulator;

public sealed class FaultTests : EmulatorHarness
{
    [Theory]
    [InlineData(500, "GES.7006")]
    [InlineData(503, "APIG.0201")]
    [InlineData(408, "GES.7005")]
    public async Task Status_fault_answers_the_next_N_matching_requests_then_stops(int status, string code)
    {
        var token = await TokenAsync();
        await AddFaultAsync(new FaultSpec { Method = "GET", Path = "/v2/*/graphs/*/backups", Kind = "status", Status = status, Count = 2 });
        for (var i = 0; i < 2; i++)
        {
            var (got, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backups", token: token);
            Assert.Equal(status, got);
            Assert.Equal(code, body!["error_code"]!.GetValue<string>());
        }

        Assert.Equal(200, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backups", token: token)).Status);
        Assert.Equal(200, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Status);
    }

    [Fact]
    public async Task Throttling_fault_is_429_APIG_0308_with_retry_after()
    {
        await AddFaultAsync(new FaultSpec { Path = "/v2/*", Kind = "status", Status = 429, RetryAfterSeconds = 3 });
        using var response = await SendAsync(HttpMethod.Get, $"{Graphs}/{GraphId}");
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(3), response.Headers.RetryAfter!.Delta);
        Assert.Contains("APIG.0308", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Custom_error_code_fault()
    {
        await AddFaultAsync(new FaultSpec { Path = "/v2/*/backup-files", Kind = "status", Status = 400, ErrorCode = "GES.7006", ErrorMessage = "The underlying graph engine has internal error." });
        var (status, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backup-files?backup_id=x");
        Assert.Equal(400, status);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(TestData("003-backup-files-response-400.json")), body));
    }

    [Fact]
    public async Task Latency_fault_delays_the_answer()
    {
        var token = await TokenAsync();
        await AddFaultAsync(new FaultSpec { Path = "/v2/*", Kind = "latency", DelayMs = 400 });
        var watch = Stopwatch.StartNew();
        Assert.Equal(200, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Status);
        Assert.True(watch.ElapsedMilliseconds >= 380, $"took {watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task Drop_fault_closes_a_download_after_K_bytes()
    {
        var (link, _, _) = await LinkAsync();
        await AddFaultAsync(new FaultSpec { Path = "/obs/*", Kind = "drop", AfterBytes = 100_000 });
        using var response = await Http.GetAsync(link, HttpCompletionOption.ResponseHeadersRead);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var received = 0L;
        var buffer = new byte[8192];
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                received += read;
            }
        });
        Assert.Equal(100_000, received);
    }

    [Fact]
    public async Task Drop_fault_on_an_api_route_resets_the_connection()
    {
        var token = await TokenAsync();
        await AddFaultAsync(new FaultSpec { Path = "/v2/*", Kind = "drop" });
        await Assert.ThrowsAsync<HttpRequestException>(() => CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token));
        Assert.Equal(200, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Status);
    }

    [Fact]
    public async Task Early_expiry_fault_makes_a_valid_link_answer_expired()
    {
        var (link, _, _) = await LinkAsync();
        await AddFaultAsync(new FaultSpec { Path = "/obs/*", Kind = "expireLink" });
        using var expired = await Http.GetAsync(link);
        Assert.Equal(HttpStatusCode.Forbidden, expired.StatusCode);
        Assert.Contains("<Code>AccessDenied</Code>", await expired.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var ok = await Http.GetAsync(link);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Ignore_range_fault_serves_the_whole_object_with_200()
    {
        var (link, _, _) = await LinkAsync();
        await AddFaultAsync(new FaultSpec { Path = "/obs/*", Kind = "ignoreRange" });
        var request = new HttpRequestMessage(HttpMethod.Get, link);
        request.Headers.Range = new(100, 199);
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(3 * 1024 * 1024, (await response.Content.ReadAsByteArrayAsync()).Length);
    }

    [Fact]
    public async Task Corrupt_fault_flips_one_byte_at_the_offset()
    {
        var (link, backupId, name) = await LinkAsync();
        await AddFaultAsync(new FaultSpec { Path = "/obs/*", Kind = "corrupt", Offset = 70_000 });
        var bytes = await Http.GetByteArrayAsync(link);
        var expected = new byte[bytes.Length];
        BackupContent.Fill(BackupContent.Seed(backupId, name), 0, expected);
        var differing = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] != expected[i]).ToList();
        Assert.Equal([70_000], differing);
    }

    [Theory]
    [InlineData("failed")]
    [InlineData("partiallyFailed")]
    public async Task Fail_job_fault_ends_the_created_job_in_failure_with_a_reason(string outcome)
    {
        var token = await TokenAsync();
        await AddFaultAsync(new FaultSpec { Method = "POST", Path = "/v2/*/backups", Kind = "failJob", Outcome = outcome, Reason = "disk full" });
        var (_, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        Advance(10);
        var job = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{body!["job_id"]}/status", token: token)).Body!;
        Assert.Equal(outcome, job["status"]!.GetValue<string>());
        Assert.Equal("disk full", job["fail_reason"]!.GetValue<string>());
        var list = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backups", token: token)).Body!;
        Assert.Equal("failed", list["backup_list"]![0]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Hang_job_fault_keeps_the_job_running()
    {
        var token = await TokenAsync();
        await AddFaultAsync(new FaultSpec { Method = "POST", Path = "/v2/*/backups", Kind = "hangJob" });
        var (_, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        Advance(20 * 3600);
        Assert.Equal("running", (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{body!["job_id"]}/status", token: token)).Body!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Unlimited_fault_lasts_until_cleared_and_unknown_kinds_are_refused()
    {
        var token = await TokenAsync();
        await AddFaultAsync(new FaultSpec { Path = "/v2/*", Kind = "status", Status = 503, Count = 0 });
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(503, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Status);
        }

        await Http.DeleteAsync("_emulator/faults");
        Assert.Equal(200, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Status);
        using var refused = await Http.PostAsync("_emulator/faults", Json("""{"kind":"explode"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
    }

    [Fact]
    public async Task Every_request_is_recorded_with_method_path_and_status()
    {
        var token = await TokenAsync();
        await Http.DeleteAsync("_emulator/requests");
        await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token);
        await CallAsync(HttpMethod.Get, $"{Graphs}/nope", token: token);
        var requests = await RequestsAsync();
        Assert.Equal(
            [("GET", $"/{Graphs}/{GraphId}", 200), ("GET", $"/{Graphs}/nope", 400)],
            requests.Select(r => (r.Method, r.Path, r.Status)));
    }

    private async Task<(string Link, string BackupId, string Name)> LinkAsync()
    {
        var token = await TokenAsync();
        var backupId = await CompletedBackupAsync(token);
        var (_, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backup-files?backup_id={backupId}", token: token);
        return (body!["files"]![0]!["download_link"]!.GetValue<string>(), backupId, body["files"]![0]!["name"]!.GetValue<string>());
    }
}
