using System.Security.Cryptography;
using System.Threading.Channels;

namespace BackupRelay.Copying;

/// <summary>
/// The running hashes of a file's bytes, in order: SHA-256 always; the whole-file MD5 where something reads it (the
/// manifest, the blob's Content-MD5, a source that declares a plain MD5); the part MD5s of the source's multipart ETag
/// when it has one. docs/architecture.md ("What each hash proves") says who reads which.
/// <para>
/// Each hash is its own lane: a task that takes the chunks in order from its own queue, so the hashes run beside each
/// other and beside whatever fills the next chunk (<see cref="AppendAsync"/>), without a barrier per chunk — SHA-256 runs
/// ahead while MD5, the slow one, catches up. Hand-written: <see cref="IncrementalHash"/> has no concurrent form.
/// </para>
/// </summary>
public sealed class FileHashes : IDisposable
{
    private readonly IncrementalHash? _md5;
    private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly MultipartEtagCheck? _multipart;
    private Lane[]? _lanes;
    private Task _appended = Task.CompletedTask;

    /// <summary>SHA-256, the whole-file MD5 and, when given, the source's multipart ETag check.</summary>
    public FileHashes(MultipartEtagCheck? multipart = null)
        : this(wholeFileMd5: true, multipart)
    {
    }

    /// <summary>SHA-256, the whole-file MD5 when <paramref name="wholeFileMd5"/>, and the source's multipart ETag check when given.</summary>
    public FileHashes(bool wholeFileMd5, MultipartEtagCheck? multipart)
    {
        _md5 = wholeFileMd5 ? IncrementalHash.CreateHash(HashAlgorithmName.MD5) : null;
        _multipart = multipart;
    }

    /// <summary>SHA-256 only: bytes compared with a manifest that records it (the restore's read of the copy, a drill's read-back).</summary>
    public static FileHashes Sha256Only() => new(wholeFileMd5: false, null);

    public long Length { get; private set; }

    /// <summary>The source's multipart ETag being checked, if any.</summary>
    public MultipartEtagCheck? Multipart => _multipart;

    /// <summary>Appends on the caller's thread, every hash in turn (small inputs; no lane may be busy).</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        _md5?.AppendData(data);
        _sha256.AppendData(data);
        _multipart?.Append(data);
        Length += data.Length;
    }

    /// <summary>
    /// Queues the next bytes of the file to every hash; the task ends once every hash has read them (the caller keeps
    /// <paramref name="data"/> untouched until then). Call in file order, from one caller at a time.
    /// </summary>
    public Task AppendAsync(ReadOnlyMemory<byte> data)
    {
        if (data.Length < 256 * 1024)
        {
            // Not worth a hop per hash: hashed here, behind what is queued.
            var before = _appended;
            if (!before.IsCompleted)
            {
                before.GetAwaiter().GetResult();
            }

            Append(data.Span);
            return Task.CompletedTask;
        }

        _lanes ??= StartLanes();
        Length += data.Length;
        var chunk = new Chunk(data, _lanes.Length);
        foreach (var lane in _lanes)
        {
            lane.Queue.Writer.TryWrite(chunk);
        }

        _appended = chunk.Hashed;
        return chunk.Hashed;
    }

    private Lane[] StartLanes()
    {
        var hashes = new List<Action<ReadOnlySpan<byte>>> { _sha256.AppendData };
        if (_md5 is { } md5)
        {
            hashes.Add(md5.AppendData);
        }

        if (_multipart is { } multipart)
        {
            hashes.Add(multipart.Append);
        }

        return [.. hashes.Select(hash => new Lane(hash))];
    }

    /// <summary>The whole-file MD5 (null for <see cref="Sha256Only"/>) and SHA-256, once every queued chunk is hashed.</summary>
    public (byte[]? Md5, byte[] Sha256) Finish()
    {
        _appended.GetAwaiter().GetResult();
        return (_md5?.GetCurrentHash(), _sha256.GetCurrentHash());
    }

    /// <summary>The part size that gives the source's multipart ETag (null: none does, or there is none); once all bytes are in.</summary>
    public long? MatchedPartSize()
    {
        _appended.GetAwaiter().GetResult();
        return _multipart?.MatchedPartSize();
    }

    public void Dispose()
    {
        foreach (var lane in _lanes ?? [])
        {
            lane.Queue.Writer.TryComplete();
        }

        // A lane may be inside a hash: wait for it (quietly; a failed chunk already failed its caller) before freeing the state.
        try
        {
            Task.WaitAll([.. (_lanes ?? []).Select(l => l.Running)]);
        }
        catch (AggregateException)
        {
        }

        _md5?.Dispose();
        _sha256.Dispose();
        _multipart?.Dispose();
    }

    /// <summary>Hashes a whole stream (a committed file read back): MD5 and SHA-256.</summary>
    public static async Task<(byte[] Md5, byte[] Sha256, long Length)> OfStreamAsync(Stream stream, CancellationToken cancellationToken)
    {
        var (md5, sha, length, _) = await OfStreamAsync(stream, null, cancellationToken);
        return (md5, sha, length);
    }

    /// <summary>
    /// Hashes a whole stream, and checks it against the source's multipart ETag when one is given: reads into a ring of
    /// buffers while the lanes hash the ones before.
    /// </summary>
    public static async Task<(byte[] Md5, byte[] Sha256, long Length, long? MultipartPartSize)> OfStreamAsync(Stream stream, MultipartEtagCheck? multipart,
        CancellationToken cancellationToken)
    {
        const int ChunkBytes = 1 << 20;
        const int Ring = 4;
        using var hashes = new FileHashes(multipart);
        var buffers = new byte[Ring][];
        var hashed = new Task[Ring];
        try
        {
            for (var i = 0; i < Ring; i++)
            {
                buffers[i] = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkBytes);
                hashed[i] = Task.CompletedTask;
            }

            for (var slot = 0; ; slot = (slot + 1) % Ring)
            {
                await hashed[slot];
                var read = await stream.ReadAtLeastAsync(buffers[slot].AsMemory(0, ChunkBytes), ChunkBytes, throwOnEndOfStream: false, cancellationToken);
                if (read == 0)
                {
                    break;
                }

                hashed[slot] = hashes.AppendAsync(buffers[slot].AsMemory(0, read));
            }

            await Task.WhenAll(hashed);
        }
        finally
        {
            await Task.WhenAll(hashed.Where(t => t is not null)).ContinueWith(_ => { }, TaskScheduler.Default);
            foreach (var buffer in buffers.Where(b => b is not null))
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        var (md5, sha) = hashes.Finish();
        return (md5!, sha, hashes.Length, hashes.MatchedPartSize());
    }

    /// <summary>Bytes queued to every lane; done once the last lane read them.</summary>
    private sealed class Chunk(ReadOnlyMemory<byte> data, int lanes)
    {
        private readonly TaskCompletionSource _hashed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _left = lanes;

        public ReadOnlyMemory<byte> Data { get; } = data;

        public Task Hashed => _hashed.Task;

        public void Done()
        {
            if (Interlocked.Decrement(ref _left) == 0)
            {
                _hashed.TrySetResult();
            }
        }

        public void Fail(Exception ex) => _hashed.TrySetException(ex);
    }

    /// <summary>One hash over the chunks in order, on its own task.</summary>
    private sealed class Lane
    {
        public Lane(Action<ReadOnlySpan<byte>> hash)
        {
            Running = Task.Run(() => RunAsync(hash));
        }

        public Channel<Chunk> Queue { get; } = Channel.CreateUnbounded<Chunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        public Task Running { get; }

        private async Task RunAsync(Action<ReadOnlySpan<byte>> hash)
        {
            Exception? failed = null;
            await foreach (var chunk in Queue.Reader.ReadAllAsync())
            {
                if (failed is not null)
                {
                    // The hash state is lost: every later chunk fails too rather than waiting for ever.
                    chunk.Fail(failed);
                    continue;
                }

                try
                {
                    hash(chunk.Data.Span);
                    chunk.Done();
                }
                catch (Exception ex)
                {
                    failed = ex;
                    chunk.Fail(ex);
                }
            }
        }
    }
}
