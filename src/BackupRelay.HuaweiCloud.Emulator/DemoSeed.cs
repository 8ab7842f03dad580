namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>The state the emulator starts with when no seed file is given: one project, user, key pair, graph and engine.</summary>
public static class DemoSeed
{
    public const string ProjectId = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";
    public const string Region = "cn-north-4";
    public const string UserName = "backup-relay";
    public const string Password = "emulator-password";
    public const string Domain = "demo-domain";
    public const string AccessKey = "EMULATORACCESSKEY001";
    public const string SecretKey = "emulator-secret-key-0000000000000000000001";
    public const string GraphId = "4c5f882d-a813-4d78-a8e3-6d3212ddd121";
    public const string EngineId = "8f2a6c1e-3d4b-4e5f-9a0b-1c2d3e4f5a6b";
    public const string EngineBackupId = "b0e1c2d3-0000-4000-8000-000000000001";

    public static EmulatorSeed Create() => new()
    {
        Projects = [new() { Id = ProjectId, Name = Region }],
        Users = [new() { Name = UserName, Password = Password, Domain = Domain }],
        KeyPairs = [new() { AccessKey = AccessKey, SecretKey = SecretKey }],
        Graphs = [new() { Id = GraphId, Name = "demo_graph", ProjectId = ProjectId, Status = "200" }],
        Engines =
        [
            new()
            {
                Id = EngineId,
                Name = "demo-engine",
                ProjectId = ProjectId,
                Backups = [new() { Id = EngineBackupId, Name = "demo-engine-backup-1" }],
            },
        ],
    };
}
