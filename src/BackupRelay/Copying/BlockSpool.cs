using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace BackupRelay.Copying;

/// <summary>
/// Random access in front of a block store (Blob), so a copy into it can use long ranges too: the connections write
/// into a temporary file (<c>Copy__SpoolDirectory</c>, deleted when the copy ends), each block is uploaded from it
/// once whole (at most <c>Copy__MaxConcurrency</c> at once, streamed from the file: no buffer waits on the budget, which
/// the connections' chunks hold), and the hashes read it back in file order. On Linux a block's bytes are given back to the disk (a hole punched) once it is both
/// uploaded and hashed, so the spool holds only what is in flight, not the file. A block an earlier attempt staged
/// is downloaded again only when the hashes need its bytes, and never uploaded again.
/// </summary>
internal sealed partial class BlockSpool : IStagingFile
{
    private const int Uploaded = 1;
    private const int HashedFlag = 2;

    private readonly ICopyDestination _destination;
    private readonly CopyState _state;
    private readonly CopyOptions _options;
    private readonly SafeFileHandle _handle;
    private readonly SemaphoreSlim _uploads;
    private readonly FirstFailure _failure;
    private readonly List<Task> _pending = [];
    private readonly ConcurrentDictionary<long, int> _blocks = new();

    private BlockSpool(ICopyDestination destination, CopyState state, CopyOptions options, SafeFileHandle handle, CancellationToken cancellationToken)
    {
        (_destination, _state, _options, _handle) = (destination, state, options, handle);
        _uploads = new SemaphoreSlim(options.MaxConcurrency);
        _failure = new FirstFailure(cancellationToken);
    }

    public static BlockSpool Create(ICopyDestination destination, CopyState state, CopyOptions options, CancellationToken cancellationToken)
    {
        var directory = string.IsNullOrEmpty(options.SpoolDirectory) ? Path.GetTempPath() : options.SpoolDirectory;
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, $"backuprelay-{Guid.NewGuid():N}.spool");
        // Gone however the process ends: on Linux unlinked at once (the open handle keeps it until the process lets
        // go, a kill included); on Windows deleted when the last handle closes.
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
            OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None);
        if (!OperatingSystem.IsWindows())
        {
            File.Delete(path);
        }

        return new BlockSpool(destination, state, options, handle, cancellationToken);
    }

    public bool HoldsStagedBlocks => false;

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        RandomAccess.WriteAsync(_handle, data, offset, cancellationToken);

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        StagingReads.ReadExactlyAsync(_handle, offset, buffer, "spool", cancellationToken);

    /// <summary>Queues the block's upload (waiting while <c>Copy__MaxConcurrency</c> uploads run); false when it was staged before.</summary>
    public async Task<bool> MarkStagedAsync(string blockId, long offset, int length, CancellationToken cancellationToken = default)
    {
        _failure.ThrowIfFailed();

        if (_state.Staged.TryGetValue(blockId, out var staged) && staged == length)
        {
            Done(offset, length, Uploaded);
            return false;
        }

        await _uploads.WaitAsync(cancellationToken);
        lock (_pending)
        {
            _pending.Add(UploadAsync(blockId, offset, length));
        }

        return true;
    }

    private async Task UploadAsync(string blockId, long offset, int length)
    {
        try
        {
            await using var data = new Region(_handle, offset, length);
            var md5 = _options.BlockContentMd5 ? await MD5.HashDataAsync(data, _failure.Token) : null;
            data.Position = 0;
            await _destination.StageBlockFromStreamAsync(_state.Request.DestinationPath, blockId, offset, data, md5, _failure.Token);
            Done(offset, length, Uploaded);
        }
        catch (Exception ex)
        {
            _failure.Fail(ex);
        }
        finally
        {
            _uploads.Release();
        }
    }

    public void Hashed(long offset, int length) => Done(offset, length, HashedFlag);

    /// <summary>
    /// Once a block is uploaded and the hash cursor has passed it (it passes every block, hashes or none), its bytes
    /// leave the disk.
    /// </summary>
    private void Done(long offset, int length, int flag)
    {
        if (_blocks.AddOrUpdate(offset, flag, (_, flags) => flags | flag) == (Uploaded | HashedFlag))
        {
            _blocks.TryRemove(offset, out _);
            Release(offset, length);
        }
    }

    private void Release(long offset, int length)
    {
        if (OperatingSystem.IsLinux())
        {
            // Best effort: a hole not punched only keeps the bytes on disk until the spool is deleted.
            _ = Fallocate(_handle, FallocPunchHole | FallocKeepSize, offset, length);
        }
    }

    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        Task[] pending;
        lock (_pending)
        {
            pending = [.. _pending];
        }

        await Task.WhenAll(pending).WaitAsync(cancellationToken);
        _failure.ThrowIfFailed();
    }

    public void StartWriteBack(long offset, int length)
    {
        // A spool is never made durable: it is deleted when the copy ends.
    }

    public async ValueTask DisposeAsync()
    {
        _failure.Stop();
        Task[] pending;
        lock (_pending)
        {
            pending = [.. _pending];
        }

        await Task.WhenAll(pending);
        _handle.Dispose();
        _failure.Dispose();
        _uploads.Dispose();
    }

    /// <summary>A block's bytes in the spool as a read-only, seekable stream (the SDK seeks back to retry).</summary>
    private sealed class Region(SafeFileHandle handle, long start, long length) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get; set; }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = RandomAccess.Read(handle, buffer[..(int)Math.Min(buffer.Length, length - Position)], start + Position);
            Position += read;
            return read;
        }

        // The block was just written: its bytes are in the page cache, and a synchronous read of them is cheaper than a hop to the thread pool.
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => Position + offset,
            _ => length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private const int FallocKeepSize = 1;
    private const int FallocPunchHole = 2;

    // No .NET API gives a file range back to the disk while keeping the file's size.
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(SafeFileHandle handle, int mode, long offset, long length);
}
