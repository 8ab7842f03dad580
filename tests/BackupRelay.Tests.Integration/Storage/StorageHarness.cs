using Azure.Storage.Queues;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Storage;

/// <summary>A storage account on the shared (strict-version) Azurite, with unique queue/container names per test.</summary>
public abstract class StorageHarness : IAsyncLifetime
{
    protected Azurite Azurite { get; private set; } = null!;
    protected StorageAccount Account { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Azurite = await Azurite.InstanceAsync();
        Account = StorageAccount.FromConnectionString(Azurite.ConnectionString, Settings());
    }

    /// <summary>The client settings of this harness's account (tests add a decoding-failure handler).</summary>
    protected virtual StorageClientSettings Settings() => new() { Delay = TimeSpan.FromMilliseconds(20) };

    public Task DisposeAsync() => Task.CompletedTask;

    protected static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)];

    /// <summary>A queue client that reads and writes the wire text as it is (no base64), as another tool would.</summary>
    protected QueueClient PlainQueue(string name) =>
        new(Azurite.ConnectionString, name, new QueueClientOptions(StorageClientSettings.QueueVersion) { MessageEncoding = QueueMessageEncoding.None });
}
