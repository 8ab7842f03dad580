namespace BackupRelay.Copying;

/// <summary>
/// A destination that takes a file's bytes at any offset before its commit and reads back what it holds (a local
/// directory: the partial file). A copy into it writes each connection's bytes where they land and hashes them
/// back in file order, so no buffer waits in memory for the bytes before it.
/// </summary>
public interface IRandomAccessStaging
{
    /// <summary>Opens the partial file of <paramref name="path"/> (created if missing) for one copy, which holds the path's lock.</summary>
    Task<IStagingFile> OpenStagingAsync(string path, CancellationToken cancellationToken = default);
}

/// <summary>
/// One copy's bytes before the commit: written at any offset, read back, blocks recorded as staged once whole — a local
/// directory's partial file, or a <see cref="BlockSpool"/> in front of a block store.
/// </summary>
public interface IStagingFile : IAsyncDisposable
{
    /// <summary>Blocks staged before this copy opened the file can be read back (a partial file can; a spool holds only this copy's bytes).</summary>
    bool HoldsStagedBlocks { get; }

    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/> (bytes that were written: a short read is an error).</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stages a block whose bytes are all written: <see cref="ICopyDestination.GetStagedBlocksAsync"/> lists it once this
    /// and <see cref="CompleteAsync"/> returned. False: an earlier attempt staged it already.
    /// </summary>
    Task<bool> MarkStagedAsync(string blockId, long offset, int length, CancellationToken cancellationToken = default);

    /// <summary>The copy has hashed these bytes: it reads them no more.</summary>
    void Hashed(long offset, int length);

    /// <summary>Waits until every block marked staged is at the destination; throws the first failure.</summary>
    Task CompleteAsync(CancellationToken cancellationToken = default);

    /// <summary>Starts writing the range to durable storage without waiting (the commit makes the file durable; this spreads the work).</summary>
    void StartWriteBack(long offset, int length);
}

/// <summary>Reads of the files staging keeps (a partial file, a spool).</summary>
internal static class StagingReads
{
    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/> of <paramref name="file"/>; a short read is an error naming <paramref name="what"/>.</summary>
    public static async ValueTask ReadExactlyAsync(Microsoft.Win32.SafeHandles.SafeFileHandle file, long offset, Memory<byte> buffer, string what,
        CancellationToken cancellationToken)
    {
        for (var filled = 0; filled < buffer.Length;)
        {
            var read = await RandomAccess.ReadAsync(file, buffer[filled..], offset + filled, cancellationToken);
            if (read == 0)
            {
                throw new IOException($"The {what} ends at {offset + filled}; {offset + buffer.Length} bytes were written.");
            }

            filled += read;
        }
    }
}
