using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Unit;

public sealed class EmulatorSeedTests
{
    [Fact]
    public void The_documented_example_seed_file_loads()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Functions.sln")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        var seed = HuaweiCloudEmulator.LoadSeed(Path.Combine(root, "docs", "emulator-seed.example.json"));
        Assert.Equal("cn-north-4", seed.Projects.Single().Name);
        Assert.Equal([8388608L, 1048593L], seed.Graphs.Single().BackupFileSizes);
        Assert.Equal("ada3e720-ab87-48cb-bff7-3ec5ae1a9652", seed.Graphs.Single().Backups.Single().Id);
        Assert.Equal("demo-engine-backup-1", seed.Engines.Single().Backups.Single().Name);
        Assert.Equal(5, seed.Settings.JobRunningSeconds);
    }
}
