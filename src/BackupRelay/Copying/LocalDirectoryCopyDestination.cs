using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;

namespace BackupRelay.Copying;

/// <summary>
/// A local directory with the same semantics as a block blob: blocks are written in place into
/// <c>file.partial</c> and journalled in <c>file.partial.blocks</c>; commit writes the hashes to
/// <c>file.backuprelay.json</c> and renames the data into place.
/// </summary>
public sealed partial class LocalDirectoryCopyDestination : ICopyDestination, IRandomAccessStaging
{
    private const string PartialSuffix = ".partial";
    private const string JournalSuffix = ".partial.blocks";
    private const string SidecarSuffix = ".backuprelay.json";
    private readonly string _root;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _journalLocks = new(StringComparer.Ordinal);

    public LocalDirectoryCopyDestination(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
    }

    public string Description => $"directory {_root}";

    public bool SupportsServerSideCopy => false;

    public string FullPath(string path)
    {
        var full = Path.GetFullPath(Path.Combine(_root, CopyPaths.Checked(path)));
        return full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            ? full
            : throw new ArgumentException($"'{path}' leaves the destination directory.", nameof(path));
    }

    /// <summary>
    /// An exclusive <c>file.lock</c> (flock), so duplicate copies in any process take turns. The lock file
    /// stays: deleting it on close would let two waiters lock two different files.
    /// </summary>
    public async Task<IAsyncDisposable> LockAsync(string path, CancellationToken cancellationToken = default)
    {
        var file = FullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        while (true)
        {
            try
            {
                return new FileStream(file + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
            }
            catch (IOException)
            {
                await Task.Delay(50, cancellationToken);
            }
        }
    }

    public async Task<CommittedFile?> GetCommittedAsync(string path, CancellationToken cancellationToken = default)
    {
        var file = FullPath(path);
        if (!File.Exists(file))
        {
            return null;
        }

        var sidecar = await ReadSidecarAsync(file, cancellationToken);
        var length = new FileInfo(file).Length;
        return sidecar is null
            ? new CommittedFile(length, null, null, false)
            : new CommittedFile(length, sidecar.Md5, sidecar.Sha256, sidecar.Verified && sidecar.Length == length,
                sidecar.Metadata?.GetValueOrDefault(CopyMetadata.Verification));
    }

    public async Task<IReadOnlyDictionary<string, long>> GetStagedBlocksAsync(string path, CancellationToken cancellationToken = default)
    {
        var journal = FullPath(path) + JournalSuffix;
        var staged = new Dictionary<string, long>(StringComparer.Ordinal);
        if (!File.Exists(journal))
        {
            return staged;
        }

        foreach (var line in await File.ReadAllLinesAsync(journal, cancellationToken))
        {
            var parts = line.Split('\t');
            if (parts.Length == 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size))
            {
                staged[parts[0]] = size;
            }
        }

        return staged;
    }

    public async Task StageBlockAsync(string path, string blockId, long offset, ReadOnlyMemory<byte> data, byte[]? md5, CancellationToken cancellationToken = default)
    {
        if (md5 is not null && !System.Security.Cryptography.MD5.HashData(data.Span).AsSpan().SequenceEqual(md5))
        {
            throw new IOException($"Block {blockId} of {path} does not match its MD5.");
        }

        await using var staging = await OpenStagingAsync(path, cancellationToken);
        await staging.WriteAsync(offset, data, cancellationToken);
        await staging.MarkStagedAsync(blockId, offset, data.Length, cancellationToken);
    }

    public Task<IStagingFile> OpenStagingAsync(string path, CancellationToken cancellationToken = default)
    {
        var file = FullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var handle = File.OpenHandle(file + PartialSuffix, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        return Task.FromResult<IStagingFile>(new StagingFile(handle, file + JournalSuffix, _journalLocks.GetOrAdd(file, _ => new SemaphoreSlim(1, 1))));
    }

    /// <summary>
    /// The partial file, written in place, and its journal. A block is journalled only once its bytes are written:
    /// a journalled block is a staged block. They are made durable (fsync) once, at commit; a killed process loses
    /// nothing the page cache holds. On Linux each staged block's write-back to the disk starts at once
    /// (<c>sync_file_range</c>, which does not wait), so the commit's fsync finds little left to write instead of
    /// the whole file: the disk works while the download does.
    /// </summary>
    private sealed class StagingFile(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string journal, SemaphoreSlim journalGate) : IStagingFile
    {
        public bool HoldsStagedBlocks => true;

        public void Hashed(long offset, int length)
        {
            // The partial file is the copy itself: nothing to let go.
        }

        public Task CompleteAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
            RandomAccess.WriteAsync(handle, data, offset, cancellationToken);

        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            StagingReads.ReadExactlyAsync(handle, offset, buffer, "partial file", cancellationToken);

        public async Task<bool> MarkStagedAsync(string blockId, long offset, int length, CancellationToken cancellationToken = default)
        {
            await journalGate.WaitAsync(cancellationToken);
            try
            {
                await File.AppendAllTextAsync(journal, $"{blockId}\t{length.ToString(CultureInfo.InvariantCulture)}\n", cancellationToken);
            }
            finally
            {
                journalGate.Release();
            }

            return true;
        }

        public void StartWriteBack(long offset, int length)
        {
            if (OperatingSystem.IsLinux())
            {
                // Best effort: a failure only leaves the write-back to the commit's fsync.
                _ = SyncFileRange(handle, offset, length, SyncFileRangeWrite);
            }
        }

        public ValueTask DisposeAsync()
        {
            handle.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    public Task StageBlockFromUrlAsync(string path, string blockId, Uri source, long offset, long length, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("A local directory cannot fetch from a URL by itself; use streaming mode.");

    public async Task CommitAsync(string path, IReadOnlyList<string> blockIds, CommitInfo info, CancellationToken cancellationToken = default)
    {
        var file = FullPath(path);
        var partial = file + PartialSuffix;
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        if (info.Length == 0 && !File.Exists(partial))
        {
            await File.WriteAllBytesAsync(partial, [], cancellationToken);
        }

        using (var handle = File.OpenHandle(partial, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            // A longer partial (blocks of an earlier, larger attempt) is cut to the committed length.
            if (RandomAccess.GetLength(handle) != info.Length)
            {
                RandomAccess.SetLength(handle, info.Length);
            }

            RandomAccess.FlushToDisk(handle);
        }

        await WriteSidecarAsync(file, new Sidecar(info.Length, Hex(info.Md5), Hex(info.Sha256), info.Verified, info.Metadata.ToDictionary()), cancellationToken);
        File.Move(partial, file, overwrite: true);
        File.Delete(file + JournalSuffix);
    }

    public Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default) =>
        Task.FromResult<Stream>(new FileStream(FullPath(path), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan));

    public Task<Stream> OpenReadAsync(string path, long position, CancellationToken cancellationToken = default)
    {
        var stream = new FileStream(FullPath(path), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
        stream.Position = position;
        return Task.FromResult<Stream>(stream);
    }

    /// <summary>The file from <paramref name="position"/>; the caller reads no more than it asked for.</summary>
    public Task<Stream> OpenRangeAsync(string path, long position, long length, CancellationToken cancellationToken = default) =>
        OpenReadAsync(path, position, cancellationToken);

    public async Task<byte[]?> ReadSmallFileAsync(string path, CancellationToken cancellationToken = default)
    {
        var file = FullPath(path);
        return File.Exists(file) ? await File.ReadAllBytesAsync(file, cancellationToken) : null;
    }

    public async Task MarkVerifiedAsync(string path, byte[] md5, byte[] sha256, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken = default)
    {
        var file = FullPath(path);
        await WriteSidecarAsync(file, new Sidecar(new FileInfo(file).Length, Hex(md5), Hex(sha256), true, metadata.ToDictionary()), cancellationToken);
    }

    public Task DeleteAsync(string path, CancellationToken cancellationToken = default)
    {
        var file = FullPath(path);
        foreach (var candidate in new[] { file, file + SidecarSuffix, file + PartialSuffix, file + JournalSuffix })
        {
            File.Delete(candidate);
        }

        return Task.CompletedTask;
    }

    public async Task WriteSmallFileAsync(string path, ReadOnlyMemory<byte> content, string contentType, CancellationToken cancellationToken = default)
    {
        var file = FullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var temp = file + ".tmp-" + Guid.NewGuid().ToString("N");
        await File.WriteAllBytesAsync(temp, content.ToArray(), cancellationToken);
        File.Move(temp, file, overwrite: true);
    }

    private static string? Hex(byte[]? value) => value is null ? null : Convert.ToHexStringLower(value);

    private static async Task<Sidecar?> ReadSidecarAsync(string file, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = File.OpenRead(file + SidecarSuffix);
            return await JsonSerializer.DeserializeAsync(stream, CopyJson.Default.Sidecar, cancellationToken);
        }
        catch (Exception ex) when (ex is FileNotFoundException or JsonException)
        {
            return null;
        }
    }

    private static async Task WriteSidecarAsync(string file, Sidecar sidecar, CancellationToken cancellationToken)
    {
        var temp = file + SidecarSuffix + ".tmp-" + Guid.NewGuid().ToString("N");
        await File.WriteAllBytesAsync(temp, JsonSerializer.SerializeToUtf8Bytes(sidecar, CopyJson.Default.Sidecar), cancellationToken);
        File.Move(temp, file + SidecarSuffix, overwrite: true);
    }

    private const uint SyncFileRangeWrite = 2;

    // No .NET API starts the write-back of a file range without waiting for it (RandomAccess.FlushToDisk is fsync).
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, long length, uint flags);

    internal sealed record Sidecar(long Length, string? Md5, string? Sha256, bool Verified, Dictionary<string, string>? Metadata);
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(LocalDirectoryCopyDestination.Sidecar))]
internal sealed partial class CopyJson : System.Text.Json.Serialization.JsonSerializerContext;
