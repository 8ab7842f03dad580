using BackupRelay.Storage.Blobs;
using BackupRelay.Storage.Queues;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Storage;

/// <summary>One storage account: its queues and blob containers, sharing one HTTP pipeline.</summary>
public sealed class StorageAccount(StorageConnection connection, TimeProvider time, ILogger logger, StorageRetryOptions? retry = null) : IDisposable
{
    private readonly StorageHttp _http = new(connection, time, logger, retry);

    public StorageConnection Connection { get; } = connection;

    /// <summary>A queue; names are 3-63 lower-case letters, digits and dashes.</summary>
    public StorageQueue GetQueue(string name, QueueMessageEncoding encoding = QueueMessageEncoding.Base64) =>
        new(_http, new Uri(Connection.RequireQueueEndpoint("queue endpoint"), StorageNames.Queue(name)), name, encoding);

    public BlobContainer GetContainer(string name) =>
        new(_http, new Uri(Connection.RequireBlobEndpoint("blob endpoint"), StorageNames.Container(name)), name);

    public void Dispose() => _http.Dispose();
}
