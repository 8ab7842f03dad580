using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Emulator;

public sealed class CseTests : EmulatorHarness
{
    private const string Recovery = $"cseengine/v1/engines/{DemoSeed.EngineId}/backups/{DemoSeed.EngineBackupId}/recovery";
    private const string Engine = $"v2/{DemoSeed.ProjectId}/enginemgr/engines/{DemoSeed.EngineId}";

    [Fact]
    public async Task Restore_returns_the_camel_case_record_and_moves_through_its_states()
    {
        var token = await TokenAsync();
        var (status, record) = await CallAsync(HttpMethod.Post, Recovery, """{"name":"restore-1","description":"drill"}""", token);
        Assert.Equal(200, status);
        Assert.Equal(
            ["id", "name", "description", "engineId", "backupId", "backupName", "status", "progress", "time", "reason"],
            record!.AsObject().Select(p => p.Key));
        Assert.Equal("RecoveringData", record["status"]!.GetValue<string>());
        Assert.Equal(DemoSeed.EngineBackupId, record["backupId"]!.GetValue<string>());
        Assert.Equal("demo-engine-backup-1", record["backupName"]!.GetValue<string>());

        var engine = (await CallAsync(HttpMethod.Get, Engine, token: token)).Body!;
        Assert.Equal("Modifying", engine["status"]!.GetValue<string>());
        var jobId = engine["latest_job_id"]!.GetValue<string>();
        Assert.Equal("Executing", (await CallAsync(HttpMethod.Get, $"{Engine}/jobs/{jobId}", token: token)).Body!["status"]!.GetValue<string>());

        var restore = State.Restores.Single();
        Advance(4);
        Assert.Equal("RestartingService", restore.At(State.Now).Status);
        Advance(3);
        Assert.Equal("Success", restore.At(State.Now).Status);
        Assert.Equal("Available", (await CallAsync(HttpMethod.Get, Engine, token: token)).Body!["status"]!.GetValue<string>());
        Assert.Equal("Finished", (await CallAsync(HttpMethod.Get, $"{Engine}/jobs/{jobId}", token: token)).Body!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Failed_restore_ends_in_a_failure_state_with_a_reason()
    {
        State.Engines[DemoSeed.EngineId].RestoreOutcome = "RestartingServiceFailed";
        var token = await TokenAsync();
        await CallAsync(HttpMethod.Post, Recovery, """{"name":"r"}""", token);
        Advance(10);
        var jobId = State.Engines[DemoSeed.EngineId].LatestJobId;
        var job = (await CallAsync(HttpMethod.Get, $"{Engine}/jobs/{jobId}", token: token)).Body!;
        Assert.Equal("Error", job["status"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(job["reason"]!.GetValue<string>()));
        Assert.Equal("Unavailable", (await CallAsync(HttpMethod.Get, Engine, token: token)).Body!["status"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("cseengine/v1/engines/nope/backups/x/recovery", """{"name":"r"}""", "engine_id")]
    [InlineData($"cseengine/v1/engines/{DemoSeed.EngineId}/backups/nope/recovery", """{"name":"r"}""", "backup_id")]
    [InlineData(Recovery, """{"description":"no name"}""", "name")]
    [InlineData(Recovery, "not json", "name")]
    public async Task Unknown_engine_or_backup_or_missing_name_get_the_documented_error_body(string path, string body, string detail)
    {
        var (status, error) = await CallAsync(HttpMethod.Post, path, body);
        Assert.Equal(400, status);
        Assert.Equal(["error_code", "error_msg", "detail"], error!.AsObject().Select(p => p.Key));
        Assert.Equal(detail, error["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Second_restore_while_one_runs_is_refused()
    {
        var token = await TokenAsync();
        Assert.Equal(200, (await CallAsync(HttpMethod.Post, Recovery, """{"name":"a"}""", token)).Status);
        var (status, error) = await CallAsync(HttpMethod.Post, Recovery, """{"name":"b"}""", token);
        Assert.Equal(400, status);
        Assert.Equal("CSE.00400002", error!["error_code"]!.GetValue<string>());
        Advance(10);
        Assert.Equal(200, (await CallAsync(HttpMethod.Post, Recovery, """{"name":"c"}""", token)).Status);
    }

    [Fact]
    public async Task Unknown_engine_job_is_404()
    {
        var (status, _) = await CallAsync(HttpMethod.Get, $"{Engine}/jobs/nope");
        Assert.Equal(404, status);
    }
}
