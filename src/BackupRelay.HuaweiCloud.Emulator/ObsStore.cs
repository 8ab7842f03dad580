using System.Security.Cryptography;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>An object written to OBS through the S3 API (PutObject, a completed multipart upload, or a GES export).</summary>
public sealed class StoredObject
{
    private readonly Lazy<Task<string>> _md5;

    /// <param name="md5Hex">The content's MD5 when known as it was written; otherwise read from the content once, on first use.</param>
    public StoredObject(ObsBytes content, string? md5Hex, string etag, IReadOnlyDictionary<string, string> metadata, DateTimeOffset lastModified)
    {
        (Content, ETag, Metadata, LastModified) = (content, etag, metadata, lastModified);
        _md5 = new Lazy<Task<string>>(() => md5Hex is not null ? Task.FromResult(md5Hex) : Task.Run(() => content.Md5HexAsync()));
    }

    public ObsBytes Content { get; }
    public long Length => Content.Length;
    public string ETag { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public DateTimeOffset LastModified { get; }

    /// <summary>
    /// The MD5 of every byte (what GES's import checks the file against). For a multipart object it is read from the
    /// parts, once, off the lock (<see cref="StartHashing"/> at completion); asking before it is done waits for it.
    /// </summary>
    public string Md5Hex => _md5.Value.GetAwaiter().GetResult();

    /// <summary>Starts reading the content for its MD5 now, in the background.</summary>
    public void StartHashing() => _ = _md5.Value;

    /// <summary>Every byte in one array: tests only.</summary>
    public byte[] ReadAll() => Content.ReadAll();
}

/// <summary>A multipart upload in progress: its parts by number, each with its MD5 (the part's ETag).</summary>
public sealed class MultipartUpload
{
    public required string Id { get; init; }
    public required string Bucket { get; init; }
    public required string Key { get; init; }
    public required IReadOnlyDictionary<string, string> Metadata { get; init; }
    public required DateTimeOffset Initiated { get; init; }
    public SortedDictionary<int, (ObsBytes Data, string Md5Hex, DateTimeOffset At)> Parts { get; } = [];
}

/// <summary>One write request as it arrived, for tests that prove the client's wire format.</summary>
/// <param name="PayloadHash">The <c>x-amz-content-sha256</c> value: a hash, <c>UNSIGNED-PAYLOAD</c> or a <c>STREAMING-…</c> scheme.</param>
public sealed record ObsWrite(string Operation, string Bucket, string Key, int? PartNumber, long Length, bool ContentMd5, string PayloadHash,
    string? ContentEncoding, IReadOnlyList<string> ChecksumHeaders, int Status);

/// <summary>
/// The objects and multipart uploads of the emulator's OBS, behind <see cref="EmulatorState.Sync"/>. Bodies over
/// <see cref="InMemoryMaxBytes"/> are streamed into files of a data directory of its own (deleted with the emulator),
/// so memory stays flat whatever the object size.
/// </summary>
public sealed class ObsStore : IDisposable
{
    /// <summary>A body up to this size is kept in memory; a larger one (or one of unknown length) goes to a file.</summary>
    public const int InMemoryMaxBytes = 1024 * 1024;

    private readonly Lazy<string> _directory = new(() => Directory.CreateTempSubdirectory("backuprelay-obs-").FullName);

    /// <summary>How many body files the data directory holds (tests: what is stored on disk, and what was cleaned up).</summary>
    public int FilesOnDisk() => _directory.IsValueCreated ? Directory.GetFiles(_directory.Value).Length : 0;

    /// <summary>A new file for a body, in the data directory.</summary>
    internal string NewBodyFile() => Path.Combine(_directory.Value, EmulatorState.NewHexId());

    /// <summary>Deletes the files of bytes no longer stored (a replaced or deleted object, an aborted upload's parts).</summary>
    internal static void Discard(ObsBytes? bytes)
    {
        switch (bytes)
        {
            case FileBytes file:
                File.Delete(file.Path);
                break;
            case JoinedBytes joined:
                foreach (var part in joined.Parts)
                {
                    Discard(part);
                }

                break;
        }
    }

    public void Dispose()
    {
        if (_directory.IsValueCreated)
        {
            try
            {
                Directory.Delete(_directory.Value, recursive: true);
            }
            catch (IOException)
            {
                // A body still being read: the temp directory is the system's to clean.
            }
        }
    }

    /// <summary>OBS's smallest part, except the last (100 KB; S3's is 5 MiB).</summary>
    public const int MinPartSize = 100 * 1024;
    public const int MaxPartNumber = 10_000;

    private readonly List<ObsWrite> _writes = [];

    public Dictionary<(string Bucket, string Key), StoredObject> Objects { get; } = [];
    public Dictionary<string, MultipartUpload> Uploads { get; } = new(StringComparer.Ordinal);

    public void Clear()
    {
        Objects.Clear();
        Uploads.Clear();
        lock (_writes)
        {
            _writes.Clear();
        }
    }

    public void RecordWrite(ObsWrite write)
    {
        lock (_writes)
        {
            _writes.Add(write);
        }
    }

    public List<ObsWrite> Writes()
    {
        lock (_writes)
        {
            return [.. _writes];
        }
    }

    /// <summary>The objects under <paramref name="prefix"/> in <paramref name="bucket"/>, by key.</summary>
    public SortedDictionary<string, StoredObject> List(string bucket, string prefix)
    {
        var found = new SortedDictionary<string, StoredObject>(StringComparer.Ordinal);
        foreach (var ((b, key), value) in Objects)
        {
            if (b == bucket && key.StartsWith(prefix, StringComparison.Ordinal))
            {
                found[key] = value;
            }
        }

        return found;
    }

    /// <summary><c>obs://bucket/prefix</c> or <c>bucket/prefix/</c> → (bucket, <c>prefix/</c>), as GES reads an import or export path.</summary>
    public static (string Bucket, string Prefix) SplitPath(string path)
    {
        path = path.StartsWith("obs://", StringComparison.OrdinalIgnoreCase) ? path[6..] : path;
        var slash = path.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? path : path[..slash];
        var prefix = slash < 0 ? "" : path[(slash + 1)..];
        return (bucket, prefix.Length > 0 && !prefix.EndsWith('/') ? prefix + "/" : prefix);
    }

    public static string Md5Hex(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(MD5.HashData(data));
}
