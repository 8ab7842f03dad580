using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.HuaweiCloud;

public sealed class CseClientTests : ClientHarness
{
    [Fact]
    public async Task Restore_then_watch_engine_and_job_to_the_end()
    {
        var record = await Cse.RestoreAsync(DemoSeed.EngineId, DemoSeed.EngineBackupId, "drill-1", "quarterly drill");
        Assert.Equal("RecoveringData", record.Status);
        Assert.Equal(DemoSeed.EngineId, record.EngineId);
        Assert.Equal("demo-engine-backup-1", record.BackupName);
        Assert.Equal(0, record.Progress);

        var engine = await Cse.GetEngineAsync(DemoSeed.EngineId);
        Assert.Equal("Modifying", engine.Status);
        var job = await Cse.GetEngineJobAsync(DemoSeed.EngineId, engine.LatestJobId!);
        Assert.Equal("Executing", job.Status);
        Assert.False(job.IsTerminal);

        Advance(TimeSpan.FromSeconds(10));
        Assert.Equal("Available", (await Cse.GetEngineAsync(DemoSeed.EngineId)).Status);
        job = await Cse.GetEngineJobAsync(DemoSeed.EngineId, engine.LatestJobId!);
        Assert.Equal("Finished", job.Status);
        Assert.True(job.IsTerminal);
    }

    [Fact]
    public async Task Restore_errors_are_classified()
    {
        var engine = await Assert.ThrowsAsync<HuaweiCloudException>(() => Cse.RestoreAsync("nope", "b", "n"));
        Assert.Equal(HuaweiCloudErrorKind.NotFound, engine.Kind);
        Assert.Equal("CSE.00404001", engine.ErrorCode);

        await Cse.RestoreAsync(DemoSeed.EngineId, DemoSeed.EngineBackupId, "first");
        var busy = await Assert.ThrowsAsync<HuaweiCloudException>(() => Cse.RestoreAsync(DemoSeed.EngineId, DemoSeed.EngineBackupId, "second"));
        Assert.Equal(HuaweiCloudErrorKind.Conflict, busy.Kind);
    }

    [Fact]
    public async Task Restore_is_not_retried_after_a_dropped_connection()
    {
        Fault(new FaultSpec { Method = "POST", Path = "/cseengine/*", Kind = "drop" });
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Cse.RestoreAsync(DemoSeed.EngineId, DemoSeed.EngineBackupId, "r"));
        Assert.Equal(HuaweiCloudErrorKind.Transient, error.Kind);
        Assert.Single(Requests("POST", "/recovery"));
    }
}
