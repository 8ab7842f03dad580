using System.Buffers;
using System.Security.Cryptography;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// The bytes of an OBS object or part, wherever they are: a small body in memory, a large one in a file of the
/// emulator's data directory, a backup's generated content (an export), or the parts of a completed multipart upload
/// in order — never joined in memory, so the emulator's memory does not grow with object size (an 8 GiB restore is
/// 8 GiB of disk and a few buffers).
/// </summary>
public abstract class ObsBytes
{
    public abstract long Length { get; }

    /// <summary>Copies <paramref name="count"/> bytes from <paramref name="offset"/> to <paramref name="destination"/>, a chunk at a time.</summary>
    public abstract Task CopyToAsync(Stream destination, long offset, long count, CancellationToken cancellationToken);

    /// <summary>Every byte, in one array: for tests and small objects only.</summary>
    public byte[] ReadAll()
    {
        using var buffer = new MemoryStream(checked((int)Length));
        CopyToAsync(buffer, 0, Length, CancellationToken.None).GetAwaiter().GetResult();
        return buffer.ToArray();
    }

    /// <summary>The MD5 of every byte (read through once, from where they are).</summary>
    public async Task<string> Md5HexAsync(CancellationToken cancellationToken = default)
    {
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        await using var sink = new HashingSink(md5);
        await CopyToAsync(sink, 0, Length, cancellationToken);
        return Convert.ToHexStringLower(md5.GetHashAndReset());
    }

    public static ObsBytes Of(byte[] data) => new MemoryBytes(data);

    internal const int ChunkSize = 256 * 1024;

    private sealed class MemoryBytes(byte[] data) : ObsBytes
    {
        public override long Length => data.Length;

        public override Task CopyToAsync(Stream destination, long offset, long count, CancellationToken cancellationToken) =>
            destination.WriteAsync(data.AsMemory((int)offset, (int)count), cancellationToken).AsTask();
    }

    /// <summary>A stream that only feeds a hash (so <see cref="Md5HexAsync"/> reads through <see cref="CopyToAsync"/> like any reader).</summary>
    private sealed class HashingSink(IncrementalHash hash) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => hash.AppendData(buffer, offset, count);
        public override void Write(ReadOnlySpan<byte> buffer) => hash.AppendData(buffer);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            hash.AppendData(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A body the emulator received, in a file of its data directory (deleted with the emulator).</summary>
internal sealed class FileBytes(string path, long length) : ObsBytes
{
    public string Path { get; } = path;

    public override long Length => length;

    public override async Task CopyToAsync(Stream destination, long offset, long count, CancellationToken cancellationToken)
    {
        using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.Asynchronous);
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            for (var done = 0L; done < count;)
            {
                var read = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, (int)Math.Min(ChunkSize, count - done)), offset + done, cancellationToken);
                if (read == 0)
                {
                    throw new IOException($"{Path} ended before byte {offset + count}.");
                }

                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                done += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>A backup file's content as <see cref="BackupContent"/> generates it (what an export writes): no bytes stored at all.</summary>
internal sealed class GeneratedBytes(ulong seed, long length) : ObsBytes
{
    public override long Length => length;

    public override async Task CopyToAsync(Stream destination, long offset, long count, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            for (var done = 0L; done < count;)
            {
                var chunk = (int)Math.Min(ChunkSize, count - done);
                BackupContent.Fill(seed, offset + done, buffer.AsSpan(0, chunk));
                await destination.WriteAsync(buffer.AsMemory(0, chunk), cancellationToken);
                done += chunk;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>The parts of a completed multipart upload, in order: the object they make, read part by part.</summary>
internal sealed class JoinedBytes(IReadOnlyList<ObsBytes> parts) : ObsBytes
{
    public IReadOnlyList<ObsBytes> Parts => parts;

    public override long Length { get; } = parts.Sum(p => p.Length);

    public override async Task CopyToAsync(Stream destination, long offset, long count, CancellationToken cancellationToken)
    {
        var start = 0L;
        foreach (var part in parts)
        {
            var end = start + part.Length;
            if (count > 0 && offset < end)
            {
                var from = offset - start;
                var take = Math.Min(count, part.Length - from);
                await part.CopyToAsync(destination, from, take, cancellationToken);
                offset += take;
                count -= take;
            }

            start = end;
        }
    }
}
