using System.Globalization;
using BackupRelay.Storage.Blobs;

namespace BackupRelay.Copying;

/// <summary>Azure Blob Storage: block blobs, Content-MD5 and hashes in metadata.</summary>
public sealed class BlobCopyDestination(BlobContainer container) : ICopyDestination
{
    public string Description => $"container {container.Name}";

    public bool SupportsServerSideCopy => true;

    public BlobContainer Container => container;

    public Task<IAsyncDisposable> LockAsync(string path, CancellationToken cancellationToken = default) =>
        Task.FromResult<IAsyncDisposable>(NoLock.Instance);

    private sealed class NoLock : IAsyncDisposable
    {
        public static readonly NoLock Instance = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    public async Task<CommittedFile?> GetCommittedAsync(string path, CancellationToken cancellationToken = default)
    {
        var properties = await container.GetPropertiesAsync(path, cancellationToken);
        if (properties is null)
        {
            return null;
        }

        var m = properties.Metadata;
        return new CommittedFile(properties.Length,
            m.TryGetValue(CopyMetadata.Md5, out var md5) ? md5 : null,
            m.TryGetValue(CopyMetadata.Sha256, out var sha) ? sha : null,
            m.TryGetValue(CopyMetadata.Verified, out var v) && v == "true");
    }

    public async Task<IReadOnlyDictionary<string, long>> GetStagedBlocksAsync(string path, CancellationToken cancellationToken = default)
    {
        var list = await container.GetBlockListAsync(path, cancellationToken);
        var staged = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var block in list.Uncommitted)
        {
            staged[block.Id] = block.Size;
        }

        return staged;
    }

    public Task StageBlockAsync(string path, string blockId, long offset, ReadOnlyMemory<byte> data, byte[]? md5, CancellationToken cancellationToken = default) =>
        container.PutBlockAsync(path, blockId, data, md5, cancellationToken);

    public Task StageBlockFromUrlAsync(string path, string blockId, Uri source, long offset, long length, CancellationToken cancellationToken = default) =>
        container.PutBlockFromUrlAsync(path, blockId, source, offset, length, null, cancellationToken);

    public async Task CommitAsync(string path, IReadOnlyList<string> blockIds, CommitInfo info, CancellationToken cancellationToken = default)
    {
        var result = await container.PutBlockListAsync(path, blockIds, new BlobWriteOptions
        {
            ContentMd5 = info.Md5,
            Metadata = Metadata(info.Length, info.Md5, info.Sha256, info.Verified, info.Metadata),
        }, cancellationToken);
        if (!result.Succeeded)
        {
            throw new IOException($"Committing {path} in {Description} failed: {result.Outcome}.");
        }
    }

    public Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default) =>
        container.OpenReadAsync(path, 0, null, cancellationToken);

    public async Task MarkVerifiedAsync(string path, byte[] md5, byte[] sha256, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken = default)
    {
        var properties = await container.GetPropertiesAsync(path, cancellationToken) ?? throw new IOException($"{path} vanished before it was marked verified.");
        await container.SetPropertiesAsync(path, md5, properties.ContentType ?? "application/octet-stream", cancellationToken);
        await container.SetMetadataAsync(path, Metadata(properties.Length, md5, sha256, true, metadata), cancellationToken);
    }

    public Task DeleteAsync(string path, CancellationToken cancellationToken = default) => container.DeleteAsync(path, null, cancellationToken);

    public async Task WriteSmallFileAsync(string path, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default)
    {
        var result = await container.PutBlobAsync(path, content, new BlobWriteOptions
        {
            ContentType = contentType,
            ContentMd5 = System.Security.Cryptography.MD5.HashData(content.Span),
        }, cancellationToken);
        if (!result.Succeeded)
        {
            throw new IOException($"Writing {path} in {Description} failed: {result.Outcome}.");
        }
    }

    private static Dictionary<string, string> Metadata(long length, byte[]? md5, byte[]? sha256, bool verified, IReadOnlyDictionary<string, string> extra)
    {
        var metadata = new Dictionary<string, string>(extra, StringComparer.OrdinalIgnoreCase)
        {
            [CopyMetadata.Verified] = verified ? "true" : "false",
            [CopyMetadata.Length] = length.ToString(CultureInfo.InvariantCulture),
        };
        if (md5 is not null)
        {
            metadata[CopyMetadata.Md5] = Convert.ToHexStringLower(md5);
        }

        if (sha256 is not null)
        {
            metadata[CopyMetadata.Sha256] = Convert.ToHexStringLower(sha256);
        }

        return metadata;
    }
}
