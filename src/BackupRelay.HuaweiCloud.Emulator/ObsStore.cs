using System.Security.Cryptography;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>An object written to OBS through the S3 API (PutObject or a completed multipart upload).</summary>
public sealed record StoredObject(byte[] Data, string Md5Hex, string ETag, IReadOnlyDictionary<string, string> Metadata, DateTimeOffset LastModified);

/// <summary>A multipart upload in progress: its parts by number, each with its MD5 (the part's ETag).</summary>
public sealed class MultipartUpload
{
    public required string Id { get; init; }
    public required string Bucket { get; init; }
    public required string Key { get; init; }
    public required IReadOnlyDictionary<string, string> Metadata { get; init; }
    public required DateTimeOffset Initiated { get; init; }
    public SortedDictionary<int, (byte[] Data, string Md5Hex, DateTimeOffset At)> Parts { get; } = [];
}

/// <summary>One write request as it arrived, for tests that prove the client's wire format.</summary>
/// <param name="PayloadHash">The <c>x-amz-content-sha256</c> value: a hash, <c>UNSIGNED-PAYLOAD</c> or a <c>STREAMING-…</c> scheme.</param>
public sealed record ObsWrite(string Operation, string Bucket, string Key, int? PartNumber, long Length, bool ContentMd5, string PayloadHash,
    string? ContentEncoding, IReadOnlyList<string> ChecksumHeaders, int Status);

/// <summary>
/// The objects and multipart uploads of the emulator's OBS, behind <see cref="EmulatorState.Sync"/>.
/// Kept in memory: the emulator serves tests and demos, whose restores are megabytes.
/// </summary>
public sealed class ObsStore
{
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
