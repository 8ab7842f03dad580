using System.Text.Json.Nodes;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Emulator;

/// <summary>The five API pages' example requests are accepted and their responses reproduced exactly.</summary>
public sealed class SeedPageTests : EmulatorHarness
{
    private const string PageGraph = "4c5f882d-a813-4d78-a8e3-6d3212ddd121";

    protected override EmulatorSeed CreateSeed()
    {
        var seed = base.CreateSeed();
        seed.Settings.AddBackupReturnsBackupId = new EmulatorSettings().AddBackupReturnsBackupId;
        var graph = seed.Graphs.Single();
        graph.Name = "ges060803_nodelete";
        graph.DataStoreVersion = "2.2.21";
        graph.Backups =
        [
            new()
            {
                Id = "ada3e720-ab87-48cb-bff7-3ec5ae1a9652", Name = "ges060803_nodelete-20210608135513", BackupMethod = "manual",
                StartTime = DateTimeOffset.FromUnixTimeMilliseconds(1623160513000), EndTime = DateTimeOffset.FromUnixTimeMilliseconds(1623160568000),
                DurationSeconds = 54, FileSizes = [1024 * 1024],
            },
            new()
            {
                Id = "7ed3f51d-816d-4651-9129-fe21b64b5c91", Name = "ges060803_nodelete_20210609203323_auto", BackupMethod = "auto",
                StartTime = DateTimeOffset.FromUnixTimeMilliseconds(1623242004000), EndTime = DateTimeOffset.FromUnixTimeMilliseconds(1623242004000),
                DurationSeconds = 0, FileSizes = [512 * 1024],
            },
        ];
        return seed;
    }

    [Fact]
    public async Task Page_002_list_backups_example_is_reproduced_exactly()
    {
        var (status, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{PageGraph}/backups?offset=0&limit=2");
        Assert.Equal(200, status);

        // The page's table lists product_type, its example leaves it out: present on every backup, else the example exactly.
        foreach (var backup in body!["backup_list"]!.AsArray())
        {
            Assert.Equal("InMemory", backup!["product_type"]!.GetValue<string>());
            backup.AsObject().Remove("product_type");
        }

        var expected = JsonNode.Parse(TestData("002-list-backups-response-200.json"));
        Assert.True(JsonNode.DeepEquals(expected, body), body!.ToJsonString());
    }

    [Fact]
    public async Task Page_002_deleted_cluster_example_is_reproduced_exactly()
    {
        State.Graphs[PageGraph].Status = "400";
        var (status, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{PageGraph}/backups?offset=0&limit=2");
        Assert.Equal(404, status);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(TestData("002-list-backups-response-404.json")), body));
    }

    [Fact]
    public async Task Page_001_add_backup_request_and_responses()
    {
        // By default the answer has the page's shape: job_id only.
        Assert.False(State.Settings.AddBackupReturnsBackupId);
        var token = await TokenAsync();
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{PageGraph}/backups", TestData("001-add-backup-request.json"), token);
        Assert.Equal(200, status);
        AssertSameShape(JsonNode.Parse(TestData("001-add-backup-response-200.json"))!, body!);

        (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/no-such-graph/backups", TestData("001-add-backup-request.json"), token);
        Assert.Equal(400, status);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(TestData("001-add-backup-response-400.json")), body));
    }

    [Fact]
    public async Task Page_000_import_request_and_responses()
    {
        var token = await TokenAsync();
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{PageGraph}/backups/import", TestData("000-import-request.json"), token);
        Assert.Equal(200, status);
        AssertSameShape(JsonNode.Parse(TestData("000-import-response-200.json"))!, body!);
        Assert.Matches("^[0-9a-f]{32}$", body!["job_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Page_003_download_links_response_has_the_documented_shape()
    {
        var (status, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{PageGraph}/backup-files?backup_id=ada3e720-ab87-48cb-bff7-3ec5ae1a9652");
        Assert.Equal(200, status);
        AssertSameShape(JsonNode.Parse(TestData("003-backup-files-response-200.json"))!, body!);
        Assert.Equal(1024, body!["files"]![0]!["size"]!.GetValue<long>());
    }

    [Fact]
    public async Task Page_004_restore_request_and_response_shape()
    {
        var (status, body) = await CallAsync(HttpMethod.Post,
            $"cseengine/v1/engines/{DemoSeed.EngineId}/backups/{DemoSeed.EngineBackupId}/recovery", TestData("004-restore-request.json"));
        Assert.Equal(200, status);
        var expected = JsonNode.Parse(TestData("004-restore-response-200.json"))!.AsObject();
        Assert.Equal(expected.Select(p => p.Key).Order(), body!.AsObject().Select(p => p.Key).Order());
        Assert.Equal("string", body["name"]!.GetValue<string>());
        Assert.Equal("string", body["description"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(null, "application/json")]
    [InlineData("application/json", null)]
    [InlineData("text/plain", "application/json")]
    public async Task Page_004_restore_requires_its_mandatory_headers(string? contentType, string? accept)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"cseengine/v1/engines/{DemoSeed.EngineId}/backups/{DemoSeed.EngineBackupId}/recovery")
        {
            Content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(TestData("004-restore-request.json"))),
        };
        request.Headers.Add("X-Auth-Token", await TokenAsync());
        if (contentType is not null)
        {
            request.Content.Headers.ContentType = new(contentType);
        }

        if (accept is not null)
        {
            request.Headers.Accept.ParseAdd(accept);
        }

        using var response = await Http.SendAsync(request);
        Assert.Equal(400, (int)response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("CSE.00400001", body["error_code"]!.GetValue<string>());
        Assert.Contains(contentType is null or "text/plain" ? "Content-Type" : "Accept", body["error_msg"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(State.Restores);
    }

    /// <summary>Same keys at every level, same JSON kinds for leaves (string vs number vs bool).</summary>
    private static void AssertSameShape(JsonNode expected, JsonNode actual)
    {
        Assert.Equal(expected.GetValueKind(), actual.GetValueKind());
        switch (expected)
        {
            case JsonObject o:
                Assert.Equal(o.Select(p => p.Key).Order(), actual.AsObject().Select(p => p.Key).Order());
                foreach (var (key, value) in o)
                {
                    AssertSameShape(value!, actual[key]!);
                }

                break;
            case JsonArray a:
                Assert.NotEmpty(actual.AsArray());
                AssertSameShape(a[0]!, actual[0]!);
                break;
            default:
                break;
        }
    }
}
