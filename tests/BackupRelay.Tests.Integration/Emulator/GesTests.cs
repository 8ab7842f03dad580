using System.Text.Json.Nodes;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Emulator;

public sealed class GesTests : EmulatorHarness
{
    private static string Code(JsonNode? body) => body!["error_code"]!.GetValue<string>();

    [Fact]
    public async Task Add_backup_returns_job_and_backup_ids_and_the_backup_goes_from_backing_up_to_success()
    {
        var token = await TokenAsync();
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        Assert.Equal(200, status);
        var jobId = body!["job_id"]!.GetValue<string>();
        var backupId = body["backup_id"]!.GetValue<string>();

        var (_, list) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backups", token: token);
        var backup = list!["backup_list"]!.AsArray().Single(b => b!["id"]!.GetValue<string>() == backupId)!;
        Assert.Equal("backing_up", backup["status"]!.GetValue<string>());
        Assert.Equal("manual", backup["backup_method"]!.GetValue<string>());
        Assert.Equal("903", (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Body!["graph"]!["status"]!.GetValue<string>());

        Assert.Equal("pending", (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{jobId}/status", token: token)).Body!["status"]!.GetValue<string>());
        Advance(1.5);
        var running = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{jobId}/status", token: token)).Body!;
        Assert.Equal("running", running["status"]!.GetValue<string>());
        Assert.NotNull(running["begin_time"]);
        Advance(4);
        var done = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{jobId}/status", token: token)).Body!;
        Assert.Equal("success", done["status"]!.GetValue<string>());
        Assert.Equal("demo_graph", done["related_graph"]!.GetValue<string>());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$", done["end_time"]!.GetValue<string>());

        list = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backups", token: token)).Body;
        backup = list!["backup_list"]!.AsArray().Single(b => b!["id"]!.GetValue<string>() == backupId)!;
        Assert.Equal("success", backup["status"]!.GetValue<string>());
        Assert.Equal(5, backup["duration"]!.GetValue<long>());
        Assert.Equal(5, backup["size"]!.GetValue<long>()); // 3 MiB + 1 MiB + 17 bytes, in MB rounded up
        Assert.True(backup["end_timestamp"]!.GetValue<long>() > backup["start_timestamp"]!.GetValue<long>());
        Assert.Equal("200", (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Body!["graph"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Backup_id_in_the_add_response_is_configurable()
    {
        State.Settings.AddBackupReturnsBackupId = false;
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}");
        Assert.Equal(200, status);
        Assert.Equal(["job_id"], body!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public async Task Adding_a_backup_while_one_runs_is_GES_7002()
    {
        var token = await TokenAsync();
        Assert.Equal(200, (await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token)).Status);
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        Assert.Equal(400, status);
        Assert.Equal("GES.7002", Code(body));
    }

    [Theory]
    [InlineData("900", "GES.7015")]
    [InlineData("901", "GES.7003")]
    [InlineData("100", "GES.7001")]
    public async Task Graph_that_is_not_running_refuses_a_backup(string graphStatus, string code)
    {
        State.Graphs[GraphId].Status = graphStatus;
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}");
        Assert.Equal(400, status);
        Assert.Equal(code, Code(body));
    }

    [Fact]
    public async Task Unknown_graph_is_GES_7000_and_unknown_job_GES_7007()
    {
        var token = await TokenAsync();
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/no-such-graph/backups", "{}", token);
        Assert.Equal(400, status);
        Assert.Equal("GES.7000", Code(body));
        (status, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/ff8080815f9a3c84015f9a438ff70001/status", token: token);
        Assert.Equal(400, status);
        Assert.Equal("GES.7007", Code(body));
    }

    [Fact]
    public async Task Listing_pages_with_offset_and_limit_and_counts_all()
    {
        await Http.PostAsync("_emulator/graphs", Json($$"""
            {"id":"g2","name":"paged","projectId":"{{ProjectId}}",
             "backups":[{"id":"b1"},{"id":"b2"},{"id":"b3"},{"id":"b4"},{"id":"b5"}]}
            """));
        var token = await TokenAsync();
        var (_, first) = await CallAsync(HttpMethod.Get, $"{Graphs}/g2/backups?offset=0&limit=2", token: token);
        Assert.Equal(5, first!["backup_count"]!.GetValue<int>());
        Assert.Equal(["b1", "b2"], first["backup_list"]!.AsArray().Select(b => b!["id"]!.GetValue<string>()));
        var (_, last) = await CallAsync(HttpMethod.Get, $"{Graphs}/g2/backups?offset=4&limit=2", token: token);
        Assert.Equal(["b5"], last!["backup_list"]!.AsArray().Select(b => b!["id"]!.GetValue<string>()));
        var (_, defaults) = await CallAsync(HttpMethod.Get, $"{Graphs}/g2/backups", token: token);
        Assert.Equal(5, defaults!["backup_list"]!.AsArray().Count);
        var (bad, error) = await CallAsync(HttpMethod.Get, $"{Graphs}/g2/backups?limit=-1", token: token);
        Assert.Equal(400, bad);
        Assert.Equal("GES.0001", Code(error));

        var (_, all) = await CallAsync(HttpMethod.Get, $"{Graphs}/backups?offset=0&limit=100", token: token);
        Assert.Equal(5, all!["backup_count"]!.GetValue<int>());
    }

    [Fact]
    public async Task Delete_removes_a_backup_and_an_unknown_one_is_an_error()
    {
        var token = await TokenAsync();
        var backupId = await CompletedBackupAsync(token);
        var (status, body) = await CallAsync(HttpMethod.Delete, $"{Graphs}/{GraphId}/backups/{backupId}", token: token);
        Assert.Equal(200, status);
        Assert.Empty(body!.AsObject());
        Assert.Equal(0, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backups", token: token)).Body!["backup_count"]!.GetValue<int>());
        Assert.Equal(400, (await CallAsync(HttpMethod.Delete, $"{Graphs}/{GraphId}/backups/{backupId}", token: token)).Status);
    }

    [Fact]
    public async Task Download_links_list_each_file_in_kilobytes_with_a_signed_link_and_expiry()
    {
        var token = await TokenAsync();
        var backupId = await CompletedBackupAsync(token);
        var (status, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backup-files?backup_id={backupId}", token: token);
        Assert.Equal(200, status);
        Assert.Equal("ges-backup-bucket", body!["bucket"]!.GetValue<string>());
        var files = body["files"]!.AsArray();
        Assert.Equal(2, files.Count);
        Assert.Equal(3072, files[0]!["size"]!.GetValue<long>());
        Assert.Equal(1025, files[1]!["size"]!.GetValue<long>());
        var link = files[0]!["download_link"]!.GetValue<string>();
        Assert.Contains("AccessKeyId=", link, StringComparison.Ordinal);
        Assert.Contains("&Expires=", link, StringComparison.Ordinal);
        Assert.Contains("&Signature=", link, StringComparison.Ordinal);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0800$", files[0]!["link_expired_time"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("utc", @"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")]
    [InlineData("doc", @"^\d{4}-\d\d-0\d\dT\d\d:\d\d:\d\d\+0800$")]
    public async Task Link_expiry_format_can_be_any_documented_variant(string format, string pattern)
    {
        State.Settings.LinkExpiredTimeFormat = format;
        var token = await TokenAsync();
        var backupId = await CompletedBackupAsync(token);
        var (_, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backup-files?backup_id={backupId}", token: token);
        Assert.Matches(pattern, body!["files"]![0]!["link_expired_time"]!.GetValue<string>());
    }

    [Fact]
    public async Task Download_links_need_a_known_finished_backup()
    {
        var token = await TokenAsync();
        Assert.Equal("GES.0001", Code((await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backup-files", token: token)).Body));
        Assert.Equal("GES.0001", Code((await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backup-files?backup_id=nope", token: token)).Body));
        var (_, added) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        var (status, _) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backup-files?backup_id={added!["backup_id"]}", token: token);
        Assert.Equal(400, status);
    }

    [Fact]
    public async Task Import_without_path_answers_the_camel_case_error_and_with_path_adds_an_import_backup()
    {
        var token = await TokenAsync();
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups/import", "{}", token);
        Assert.Equal(400, status);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(TestData("000-import-response-400.json")), body));

        State.Settings.ImportChecksObjects = false; // the answer's shape here; the path check has its own test
        (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups/import", """{"import_path":"obs-bucket/backups/g1/"}""", token);
        Assert.Equal(200, status);
        var jobId = body!["job_id"]!.GetValue<string>();
        Advance(10);
        var job = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{jobId}/status", token: token)).Body!;
        Assert.Equal("success", job["status"]!.GetValue<string>());
        var imported = job["job_detail"]!["backup_id"]!.GetValue<string>();
        var list = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backups", token: token)).Body!;
        Assert.Equal("import", list["backup_list"]!.AsArray().Single(b => b!["id"]!.GetValue<string>() == imported)!["backup_method"]!.GetValue<string>());
    }

    [Fact]
    public async Task Export_needs_backup_and_path_and_runs_a_job()
    {
        var token = await TokenAsync();
        var backupId = await CompletedBackupAsync(token);
        Assert.Equal(400, (await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups/export", """{"backup_id":"x"}""", token)).Status);
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups/export",
            $$"""{"backup_id":"{{backupId}}","export_path":"bucket/exports/"}""", token);
        Assert.Equal(200, status);
        Assert.False(string.IsNullOrEmpty(body!["job_id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Import_checks_the_path_holds_a_backup_by_name_size_and_md5()
    {
        var token = await TokenAsync();
        var backupId = await CompletedBackupAsync(token);

        async Task<JsonNode> ImportAsync(string path)
        {
            var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups/import", $$"""{"import_path":"{{path}}"}""", token);
            Assert.Equal(200, status);
            Advance(10);
            return (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{body!["job_id"]!.GetValue<string>()}/status", token: token)).Body!;
        }

        // Nothing there.
        var job = await ImportAsync("ges-restore-bucket/empty/");
        Assert.Equal("failed", job["status"]!.GetValue<string>());
        Assert.Contains("holds no backup files", job["fail_reason"]!.GetValue<string>());

        // Exported there: the import finds every file and succeeds.
        var (exportStatus, _) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups/export",
            $$"""{"backup_id":"{{backupId}}","export_path":"ges-restore-bucket/exports/"}""", token);
        Assert.Equal(200, exportStatus);
        Advance(10);
        job = await ImportAsync("ges-restore-bucket/exports/");
        Assert.Equal("success", job["status"]!.GetValue<string>());
        Assert.Equal(backupId, job["job_detail"]!["source_backup_id"]!.GetValue<string>());

        // One file missing, then one damaged.
        lock (State.Sync)
        {
            var backup = State.Backups.Single(b => b.Id == backupId);
            State.WriteBackupToObs(backup, "ges-restore-bucket/partial/");
            State.Obs.Objects.Remove(("ges-restore-bucket", "partial/" + backup.Files[1].Name));
            State.WriteBackupToObs(backup, "ges-restore-bucket/damaged/");
            var key = ("ges-restore-bucket", "damaged/" + backup.Files[0].Name);
            var stored = State.Obs.Objects[key];
            var data = stored.ReadAll();
            data[7] ^= 1;
            State.Obs.Objects[key] = new StoredObject(ObsBytes.Of(data), ObsStore.Md5Hex(data), stored.ETag, stored.Metadata, stored.LastModified);
        }

        job = await ImportAsync("ges-restore-bucket/partial/");
        Assert.Equal("failed", job["status"]!.GetValue<string>());
        Assert.Contains("is missing from the import path", job["fail_reason"]!.GetValue<string>());
        job = await ImportAsync("ges-restore-bucket/damaged/");
        Assert.Equal("failed", job["status"]!.GetValue<string>());
        Assert.Contains("damaged", job["fail_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Stop_then_start_with_a_backup_id_restores_the_graph()
    {
        var token = await TokenAsync();
        var backupId = await CompletedBackupAsync(token);
        Assert.Equal("GES.7001", Code((await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/start", "{}", token)).Body));
        Assert.Equal(200, (await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/stop", "{}", token)).Status);
        Advance(10);
        Assert.Equal("900", (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Body!["graph"]!["status"]!.GetValue<string>());
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/start", $$"""{"graph_backup_id":"{{backupId}}"}""", token);
        Assert.Equal(200, status);
        Assert.False(string.IsNullOrEmpty(body!["job_id"]!.GetValue<string>()));
        Advance(10);
        var graph = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Body!["graph"]!;
        Assert.Equal("200", graph["status"]!.GetValue<string>());
        Assert.Equal(backupId, graph["restored_from_backup_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Jobs_are_listed_and_filtered()
    {
        var token = await TokenAsync();
        await CompletedBackupAsync(token);
        await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        var (_, all) = await CallAsync(HttpMethod.Get, $"{Graphs}/jobs", token: token);
        Assert.Equal(2, all!["job_count"]!.GetValue<int>());
        var (_, pending) = await CallAsync(HttpMethod.Get, $"{Graphs}/jobs?status=pending&graph_name=demo_graph", token: token);
        Assert.Equal(1, pending!["job_count"]!.GetValue<int>());
        var day = State.Now.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var (_, today) = await CallAsync(HttpMethod.Get, $"{Graphs}/jobs?start_time={day}&end_time={day}&offset=1&limit=1", token: token);
        Assert.Equal(2, today!["job_count"]!.GetValue<int>());
        Assert.Single(today["job_list"]!.AsArray());
    }

    [Fact]
    public async Task Job_times_can_use_the_space_separated_format()
    {
        State.Settings.JobTimeFormat = "space";
        var token = await TokenAsync();
        var (_, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        Advance(10);
        var job = (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{body!["job_id"]}/status", token: token)).Body!;
        Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", job["begin_time"]!.GetValue<string>());
    }

    [Fact]
    public async Task Admin_state_shows_resources_and_reset_returns_to_the_seed()
    {
        var token = await TokenAsync();
        await CompletedBackupAsync(token);
        var state = JsonNode.Parse(await Http.GetStringAsync("_emulator/state"))!;
        Assert.Single(state["backups"]!.AsArray());
        Assert.Equal(1, state["activeTokens"]!.GetValue<int>());
        await Http.PostAsync("_emulator/reset", null);
        state = JsonNode.Parse(await Http.GetStringAsync("_emulator/state"))!;
        Assert.Empty(state["backups"]!.AsArray());
        Assert.Equal(DemoSeed.GraphId, state["graphs"]![0]!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Job_timing_is_set_through_the_admin_api()
    {
        var settings = JsonNode.Parse(await Http.GetStringAsync("_emulator/settings"))!;
        settings["jobPendingSeconds"] = 0;
        settings["jobRunningSeconds"] = 100;
        using var put = await Http.PutAsync("_emulator/settings", Json(settings.ToJsonString()));
        put.EnsureSuccessStatusCode();
        var token = await TokenAsync();
        var (_, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        Advance(50);
        Assert.Equal("running", (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{body!["job_id"]}/status", token: token)).Body!["status"]!.GetValue<string>());
        Advance(51);
        Assert.Equal("success", (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/jobs/{body["job_id"]}/status", token: token)).Body!["status"]!.GetValue<string>());
    }
}
