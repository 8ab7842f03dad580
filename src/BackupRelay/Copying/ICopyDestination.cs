namespace BackupRelay.Copying;

/// <summary>A file as committed at the destination, with the hashes recorded beside it.</summary>
/// <param name="Offline">Its bytes cannot be read now (a blob in the Archive tier, or being rehydrated).</param>
public sealed record CommittedFile(long Length, string? Md5Hex, string? Sha256Hex, bool Verified, string? Verification = null, bool Offline = false);

/// <summary>What to record when a file is committed.</summary>
public sealed record CommitInfo(long Length, byte[]? Md5, byte[]? Sha256, bool Verified, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// Where copies land: a block-blob-like store with uncommitted blocks, a commit, and hashes recorded
/// with the file. "Verified" marks a file whose length and hashes were checked; nothing else looks complete.
/// </summary>
public interface ICopyDestination
{
    /// <summary>For messages: the container or directory, never a secret.</summary>
    string Description { get; }

    bool SupportsServerSideCopy { get; }

    /// <summary>
    /// A committed file can never be changed or deleted (immutable storage): the copier commits each file
    /// once, with its hashes and metadata, only after its bytes were verified.
    /// </summary>
    bool WriteOnce => false;

    /// <summary>
    /// Holds off other copies of the same path while one runs, where the store needs it (a local file
    /// cannot take two writers safely; block blobs can, so theirs is a no-op).
    /// </summary>
    Task<IAsyncDisposable> LockAsync(string path, CancellationToken cancellationToken = default);

    Task<CommittedFile?> GetCommittedAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Uncommitted blocks staged for <paramref name="path"/>: id → size.</summary>
    Task<IReadOnlyDictionary<string, long>> GetStagedBlocksAsync(string path, CancellationToken cancellationToken = default);

    Task StageBlockAsync(string path, string blockId, long offset, ReadOnlyMemory<byte> data, byte[]? md5, CancellationToken cancellationToken = default);

    /// <summary>Stages a block from a seekable stream of exactly its bytes (read again from the start to retry); by default read into memory first.</summary>
    async Task StageBlockFromStreamAsync(string path, string blockId, long offset, Stream data, byte[]? md5, CancellationToken cancellationToken = default)
    {
        var bytes = new byte[data.Length];
        await data.ReadExactlyAsync(bytes, cancellationToken);
        await StageBlockAsync(path, blockId, offset, bytes, md5, cancellationToken);
    }

    Task StageBlockFromUrlAsync(string path, string blockId, Uri source, long offset, long length, CancellationToken cancellationToken = default);

    Task CommitAsync(string path, IReadOnlyList<string> blockIds, CommitInfo info, CancellationToken cancellationToken = default);

    Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Reads the file from byte <paramref name="position"/> on, streamed.</summary>
    Task<Stream> OpenReadAsync(string path, long position, CancellationToken cancellationToken = default);

    /// <summary>Reads <paramref name="length"/> bytes from byte <paramref name="position"/> (fewer at the end of the file), streamed.</summary>
    Task<Stream> OpenRangeAsync(string path, long position, long length, CancellationToken cancellationToken = default);

    /// <summary>A small whole file (a manifest), or null when there is none.</summary>
    Task<byte[]?> ReadSmallFileAsync(string path, CancellationToken cancellationToken = default);

    Task MarkVerifiedAsync(string path, byte[] md5, byte[] sha256, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken = default);

    Task DeleteAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes a small whole file (a manifest), replacing any previous one. On a write-once destination an
    /// existing file is never replaced: the call fails instead (callers read first).
    /// </summary>
    Task WriteSmallFileAsync(string path, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default);
}

/// <summary>Metadata names BackupRelay records on copied files.</summary>
public static class CopyMetadata
{
    public const string Md5 = "backuprelay_md5";
    public const string Sha256 = "backuprelay_sha256";
    public const string Verified = "backuprelay_verified";
    public const string Length = "backuprelay_length";
    public const string Verification = "backuprelay_verification";
}
