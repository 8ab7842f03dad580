using System.Globalization;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using BackupRelay.Storage;

namespace BackupRelay.Copying;

/// <summary>
/// Azure Blob Storage through the SDK: block blobs, Content-MD5 and hashes in metadata, written with the
/// block-list commit itself (so a container under an immutability policy, <paramref name="writeOnce"/>, works).
/// </summary>
public sealed class BlobCopyDestination(BlobContainerClient container, bool writeOnce = false) : ICopyDestination
{
    public string Description => $"container {container.Name}";

    /// <summary>Put Block From URL hashes nothing on the way: the file is hashed back after commit, which a write-once container forbids.</summary>
    public bool SupportsServerSideCopy => !writeOnce;

    public bool WriteOnce => writeOnce;

    public BlobContainerClient Container => container;

    public Task<IAsyncDisposable> LockAsync(string path, CancellationToken cancellationToken = default) =>
        Task.FromResult<IAsyncDisposable>(NoLock.Instance);

    private sealed class NoLock : IAsyncDisposable
    {
        public static readonly NoLock Instance = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private BlockBlobClient Blob(string path) => container.GetBlockBlobClient(CopyPaths.Checked(path));

    public async Task<CommittedFile?> GetCommittedAsync(string path, CancellationToken cancellationToken = default)
    {
        BlobProperties properties;
        try
        {
            properties = (await Blob(path).GetPropertiesAsync(cancellationToken: cancellationToken)).Value;
        }
        catch (RequestFailedException ex) when (StorageErrors.IsNotFound(ex))
        {
            return null;
        }

        var m = properties.Metadata;
        return new CommittedFile(properties.ContentLength,
            m.TryGetValue(CopyMetadata.Md5, out var md5) ? md5 : null,
            m.TryGetValue(CopyMetadata.Sha256, out var sha) ? sha : null,
            m.TryGetValue(CopyMetadata.Verified, out var v) && v is "true" or VerifiedReceivedOnly,
            m.TryGetValue(CopyMetadata.Verification, out var how) ? how : null,
            Offline: properties.AccessTier == AccessTier.Archive);
    }

    public async Task<IReadOnlyDictionary<string, long>> GetStagedBlocksAsync(string path, CancellationToken cancellationToken = default)
    {
        var staged = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            var list = (await Blob(path).GetBlockListAsync(BlockListTypes.Uncommitted, cancellationToken: cancellationToken)).Value;
            foreach (var block in list.UncommittedBlocks)
            {
                staged[block.Name] = block.SizeLong;
            }
        }
        catch (RequestFailedException ex) when (StorageErrors.IsNotFound(ex))
        {
            // No blob and no staged blocks yet: nothing to resume from.
        }

        return staged;
    }

    public async Task StageBlockAsync(string path, string blockId, long offset, ReadOnlyMemory<byte> data, byte[]? md5, CancellationToken cancellationToken = default)
    {
        // BinaryData's stream reads the memory in place (no copy) and seeks, so the SDK can retry the block.
        using var content = BinaryData.FromBytes(data).ToStream();
        await StageBlockFromStreamAsync(path, blockId, offset, content, md5, cancellationToken);
    }

    /// <summary>The SDK streams the block from <paramref name="data"/> (seeking back to retry): no copy of it in memory.</summary>
    public async Task StageBlockFromStreamAsync(string path, string blockId, long offset, Stream data, byte[]? md5, CancellationToken cancellationToken = default) =>
        await Blob(path).StageBlockAsync(blockId, data, new BlockBlobStageBlockOptions
        {
            TransferValidation = md5 is null ? null : new UploadTransferValidationOptions
            {
                ChecksumAlgorithm = StorageChecksumAlgorithm.MD5,
                PrecalculatedChecksum = md5,
            },
        }, cancellationToken);

    public Task StageBlockFromUrlAsync(string path, string blockId, Uri source, long offset, long length, CancellationToken cancellationToken = default) =>
        Blob(path).StageBlockFromUriAsync(source, blockId, new StageBlockFromUriOptions { SourceRange = new HttpRange(offset, length) }, cancellationToken);

    public async Task CommitAsync(string path, IReadOnlyList<string> blockIds, CommitInfo info, CancellationToken cancellationToken = default)
    {
        var result = await BlobWrites.CommitBlockListAsync(Blob(path), blockIds, new CommitBlockListOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentHash = info.Md5, ContentType = "application/octet-stream" },
            Metadata = Metadata(info.Length, info.Md5, info.Sha256, info.Verified, info.Metadata),
        }, cancellationToken);
        if (!result.Succeeded)
        {
            throw new IOException($"Committing {path} in {Description} failed: {result.Outcome}.");
        }
    }

    public async Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default) =>
        (await Blob(path).DownloadStreamingAsync(cancellationToken: cancellationToken)).Value.Content;

    public async Task<Stream> OpenReadAsync(string path, long position, CancellationToken cancellationToken = default) =>
        (await Blob(path).DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(position) }, cancellationToken)).Value.Content;

    public async Task<Stream> OpenRangeAsync(string path, long position, long length, CancellationToken cancellationToken = default) =>
        (await Blob(path).DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(position, length) }, cancellationToken)).Value.Content;

    public async Task<byte[]?> ReadSmallFileAsync(string path, CancellationToken cancellationToken = default)
    {
        try
        {
            return (await Blob(path).DownloadContentAsync(cancellationToken)).Value.Content.ToArray();
        }
        catch (RequestFailedException ex) when (StorageErrors.IsNotFound(ex))
        {
            return null;
        }
    }

    public async Task MarkVerifiedAsync(string path, byte[] md5, byte[] sha256, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken = default)
    {
        if (writeOnce)
        {
            throw new InvalidOperationException($"{path} in write-once {Description} cannot be marked verified after its commit.");
        }

        var blob = Blob(path);
        var properties = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value;
        await blob.SetHttpHeadersAsync(new BlobHttpHeaders { ContentHash = md5, ContentType = properties.ContentType ?? "application/octet-stream" },
            cancellationToken: cancellationToken);
        await blob.SetMetadataAsync(Metadata(properties.ContentLength, md5, sha256, true, metadata), cancellationToken: cancellationToken);
    }

    public Task DeleteAsync(string path, CancellationToken cancellationToken = default) =>
        Blob(path).DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: cancellationToken);

    public async Task WriteSmallFileAsync(string path, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default) =>
        await container.GetBlobClient(CopyPaths.Checked(path)).UploadAsync(BinaryData.FromBytes(content), new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = contentType, ContentHash = System.Security.Cryptography.MD5.HashData(content.Span) },
            Conditions = writeOnce ? new BlobRequestConditions { IfNoneMatch = ETag.All } : null,
        }, cancellationToken);

    /// <summary>
    /// Proves this identity may write into the container without leaving anything behind: one block staged
    /// and never committed (Azure drops uncommitted blocks after a week). Unlike writing a blob, this is allowed
    /// under an immutability policy and can be repeated at every start.
    /// </summary>
    public async Task CheckWriteAsync(CancellationToken cancellationToken = default)
    {
        using var content = new MemoryStream("written at start-up to check the app may write here\n"u8.ToArray());
        await container.GetBlockBlobClient(".backuprelay/write-check").StageBlockAsync(
            Convert.ToBase64String("write-check"u8), content, cancellationToken: cancellationToken);
    }
    /// <summary><c>backuprelay_verified</c> of a complete copy whose bytes were never checked against the source.</summary>
    public const string VerifiedReceivedOnly = "received-only";

    private static Dictionary<string, string> Metadata(long length, byte[]? md5, byte[]? sha256, bool verified, IReadOnlyDictionary<string, string> extra)
    {
        var metadata = new Dictionary<string, string>(extra, StringComparer.OrdinalIgnoreCase)
        {
            // A copy the source could not vouch for is complete but never says "true".
            [CopyMetadata.Verified] = !verified ? "false"
                : extra.TryGetValue(CopyMetadata.Verification, out var how) && how == Verification.ReceivedOnly ? VerifiedReceivedOnly : "true",
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
