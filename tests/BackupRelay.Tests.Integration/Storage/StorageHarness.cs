using BackupRelay.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Integration.Storage;

/// <summary>A storage account on the shared Azurite, with unique queue/container names per test.</summary>
public abstract class StorageHarness : IAsyncLifetime
{
    protected Azurite Azurite { get; private set; } = null!;
    protected StorageAccount Account { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Azurite = await Azurite.InstanceAsync();
        Account = new StorageAccount(StorageConnection.Parse(Azurite.ConnectionString), TimeProvider.System, NullLogger.Instance);
    }

    public Task DisposeAsync()
    {
        Account.Dispose();
        return Task.CompletedTask;
    }

    protected static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)];
}
