using Azure.Storage.Blobs;
using Azure.Storage.Queues;

namespace BackupRelay.LocalHost;

/// <summary>The storage service versions the local host asks for: the newest the pinned Azurite (3.37.0) serves.</summary>
public static class StorageVersions
{
    public const QueueClientOptions.ServiceVersion Queue = QueueClientOptions.ServiceVersion.V2026_06_06;
    public const BlobClientOptions.ServiceVersion Blob = BlobClientOptions.ServiceVersion.V2026_06_06;
}
