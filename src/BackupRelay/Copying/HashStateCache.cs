using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace BackupRelay.Copying;

/// <summary>
/// MD5 and SHA-256 states of copies paused between slices, kept in this process. A continuation
/// that lands here resumes hashing; one that lands elsewhere (another instance, a restart) hashes
/// the committed file instead. IncrementalHash state cannot be serialized into a message.
/// </summary>
public sealed class HashStateCache
{
    private const int MaxEntries = 512;
    private readonly ConcurrentDictionary<(string CopyId, long Offset), FileHashes> _states = new();

    public void Put(string copyId, long offset, FileHashes hashes)
    {
        if (_states.Count >= MaxEntries)
        {
            foreach (var key in _states.Keys.Take(MaxEntries / 4))
            {
                if (_states.TryRemove(key, out var old))
                {
                    old.Dispose();
                }
            }
        }

        _states[(copyId, offset)] = hashes;
    }

    /// <summary>Whether this process holds the hash state of <paramref name="copyId"/> paused at <paramref name="offset"/>.</summary>
    public bool Holds(string copyId, long offset) => _states.ContainsKey((copyId, offset));

    public FileHashes? TryTake(string copyId, long offset) => _states.TryRemove((copyId, offset), out var hashes) ? hashes : null;
}

/// <summary>Running MD5 and SHA-256 of a file's bytes, in order (and its multipart ETag check, when the source gave one).</summary>
public sealed class FileHashes(MultipartEtagCheck? multipart = null) : IDisposable
{
    private readonly IncrementalHash _md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
    private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long Length { get; private set; }

    /// <summary>The source's multipart ETag being checked, if any.</summary>
    public MultipartEtagCheck? Multipart => multipart;

    public void Append(ReadOnlySpan<byte> data)
    {
        _md5.AppendData(data);
        _sha256.AppendData(data);
        multipart?.Append(data);
        Length += data.Length;
    }

    /// <summary>Both hashes of one block at once, on two threads: MD5 is the slow one (about 0.7 GB/s).</summary>
    public void AppendParallel(ReadOnlyMemory<byte> data)
    {
        if (data.Length < 1024 * 1024)
        {
            Append(data.Span);
            return;
        }

        var sha = Task.Run(() => _sha256.AppendData(data.Span));
        var parts = multipart is null ? Task.CompletedTask : Task.Run(() => multipart.Append(data.Span));
        _md5.AppendData(data.Span);
        sha.GetAwaiter().GetResult();
        parts.GetAwaiter().GetResult();
        Length += data.Length;
    }

    public (byte[] Md5, byte[] Sha256) Finish() => (_md5.GetCurrentHash(), _sha256.GetCurrentHash());

    /// <summary>The part size that gives the source's multipart ETag (null: none does, or there is none); once all bytes are in.</summary>
    public long? MatchedPartSize() => multipart?.MatchedPartSize();

    public void Dispose()
    {
        _md5.Dispose();
        _sha256.Dispose();
        multipart?.Dispose();
    }

    /// <summary>Hashes a whole stream (a committed file read back).</summary>
    public static async Task<(byte[] Md5, byte[] Sha256, long Length)> OfStreamAsync(Stream stream, CancellationToken cancellationToken)
    {
        var (md5, sha, length, _) = await OfStreamAsync(stream, null, cancellationToken);
        return (md5, sha, length);
    }

    /// <summary>Hashes a whole stream, and checks it against the source's multipart ETag when one is given.</summary>
    public static async Task<(byte[] Md5, byte[] Sha256, long Length, long? MultipartPartSize)> OfStreamAsync(Stream stream, MultipartEtagCheck? multipart,
        CancellationToken cancellationToken)
    {
        using var hashes = new FileHashes(multipart);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer.AsMemory(0, 1 << 20), cancellationToken)) > 0)
            {
                hashes.Append(buffer.AsSpan(0, read));
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        var (md5, sha) = hashes.Finish();
        return (md5, sha, hashes.Length, hashes.MatchedPartSize());
    }
}
