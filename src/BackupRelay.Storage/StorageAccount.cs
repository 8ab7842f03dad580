using Azure.Core;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;

namespace BackupRelay.Storage;

/// <summary>How the SDK clients of one account retry and which service version they speak.</summary>
public sealed class StorageClientSettings
{
    /// <summary>
    /// The service version every request names. Pinned rather than the SDK's newest (2026-10-06) so that
    /// Azure and the pinned Azurite (which accepts at most 2026-06-06) run the same protocol.
    /// </summary>
    public const BlobClientOptions.ServiceVersion BlobVersion = BlobClientOptions.ServiceVersion.V2026_06_06;

    public const QueueClientOptions.ServiceVersion QueueVersion = QueueClientOptions.ServiceVersion.V2026_06_06;

    public int MaxRetries { get; set; } = 5;
    public TimeSpan Delay { get; set; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Longest wait for one network operation (headers, or one read of a streamed body).</summary>
    public TimeSpan NetworkTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>Tests only: a scripted transport in place of the network.</summary>
    internal Azure.Core.Pipeline.HttpPipelineTransport? Transport { get; set; }

    internal void Apply(ClientOptions options)
    {
        if (Transport is not null)
        {
            options.Transport = Transport;
        }

        options.Diagnostics.IsLoggingContentEnabled = false;
        var retry = options.Retry;
        retry.Mode = RetryMode.Exponential;
        retry.MaxRetries = MaxRetries;
        retry.Delay = Delay;
        retry.MaxDelay = MaxDelay;
        retry.NetworkTimeout = NetworkTimeout;
    }
}

/// <summary>The SDK clients of one storage account: blob containers and base64 queues, as the Functions queue trigger expects.</summary>
public sealed class StorageAccount
{
    private readonly Lazy<BlobServiceClient> _blobs;
    private readonly Lazy<QueueServiceClient> _queues;
    private readonly Lazy<QueueServiceClient> _rawQueues;

    public StorageAccount(StorageConnection connection, StorageClientSettings? settings = null)
    {
        settings ??= new StorageClientSettings();
        Connection = connection;
        _blobs = new(() =>
        {
            var options = new BlobClientOptions(StorageClientSettings.BlobVersion);
            settings.Apply(options);
            return connection.CreateBlobServiceClient(options);
        });
        _queues = new(() =>
        {
            var options = new QueueClientOptions(StorageClientSettings.QueueVersion) { MessageEncoding = QueueMessageEncoding.Base64 };
            settings.Apply(options);
            return connection.CreateQueueServiceClient(options);
        });
        _rawQueues = new(() =>
        {
            var options = new QueueClientOptions(StorageClientSettings.QueueVersion) { MessageEncoding = QueueMessageEncoding.None };
            settings.Apply(options);
            return connection.CreateQueueServiceClient(options);
        });
    }

    public StorageConnection Connection { get; }

    public BlobServiceClient Blobs => _blobs.Value;

    public QueueServiceClient Queues => _queues.Value;

    /// <summary>A queue; names are 3-63 lower-case letters, digits and dashes.</summary>
    public QueueClient GetQueue(string name) => Queues.GetQueueClient(StorageNames.Queue(name));

    /// <summary>A queue read as stored, without base64 decoding (a poison queue can hold text that never was base64).</summary>
    public QueueClient GetRawQueue(string name) => _rawQueues.Value.GetQueueClient(StorageNames.Queue(name));

    public BlobContainerClient GetContainer(string name) => Blobs.GetBlobContainerClient(StorageNames.Container(name));

    /// <summary>Builds the account from a connection string (tests, dev tools).</summary>
    public static StorageAccount FromConnectionString(string connectionString, StorageClientSettings? settings = null) =>
        new(StorageConnection.FromConnectionString(connectionString), settings);
}
