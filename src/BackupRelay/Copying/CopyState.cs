namespace BackupRelay.Copying;

/// <summary>
/// One call's progress: offsets, the source's size and declared checksums, hashes so far, statistics and the
/// slice's budget. Shared by the source, the pipelines and the commit of one <see cref="FileCopier.CopyAsync"/>.
/// </summary>
internal sealed class CopyState
{
    private readonly CopyOptions _settings;
    private readonly long _startedAt;
    private long _sliceBytes;

    public CopyState(CopyRequest request, IReadOnlyDictionary<string, long> staged, CopyOptions settings, long startedAt)
    {
        Request = request;
        Staged = staged;
        Link = request.SourceLink;
        _settings = settings;
        _startedAt = startedAt;
        if (request.Continuation is { } c)
        {
            Size = c.Size;
            BlockSize = c.BlockSize;
            SourceMd5Hex = c.SourceMd5Hex;
            SourceMultipartEtag = c.SourceMultipartEtag;
        }
        else
        {
            // Blocks left by an earlier attempt tell their block size.
            BlockSize = staged.Keys.Select(id => BlockIds.TryParse(id, out var size, out _, out var generation) && generation == request.Generation ? size : 0)
                .FirstOrDefault(s => s > 0);
        }

        Offset = BlockSize > 0 ? FirstMissing(Size) : 0;
    }

    public CopyRequest Request { get; }
    public IReadOnlyDictionary<string, long> Staged { get; }
    public Uri Link { get; set; }
    public long? Size { get; private set; }
    public int BlockSize { get; private set; }
    public long Offset { get; private set; }
    public string? SourceMd5Hex { get; set; }

    /// <summary>How the source object is encrypted at rest, when that keeps its ETag from being an MD5 of its bytes (null: not so).</summary>
    public string? SourceEncryption { get; set; }

    /// <summary>The source's multipart ETag (<c>hex-N</c>), when it declares no plain MD5.</summary>
    public string? SourceMultipartEtag { get; set; }

    public FileHashes? Hashes { get; set; }

    /// <summary>A check of the source's multipart ETag for hashing from byte 0 (none when the source declares a plain MD5, or no usable ETag).</summary>
    public MultipartEtagCheck? NewMultipartCheck() => SourceMd5Hex is null ? MultipartEtagCheck.For(SourceMultipartEtag, Size) : null;

    /// <summary>
    /// Fresh hashes for hashing from byte 0: SHA-256; the source's multipart check when it has one; and the whole-file MD5
    /// unless that check is what proves the copy against the source (nothing else reads it then, unless
    /// <c>Copy__WholeFileMd5=Always</c> asks for it: docs/architecture.md, "What each hash proves").
    /// </summary>
    public FileHashes NewHashes()
    {
        var multipart = NewMultipartCheck();
        return new FileHashes(wholeFileMd5: multipart is null || _settings.WholeFileMd5 == WholeFileMd5.Always, multipart);
    }
    public long BytesFromSource;
    public int ConsecutiveSourceFailures { get; set; }
    public int SourceRestarts;

    /// <summary>A request for a range was answered with the whole file: this source ignores Range.</summary>
    public bool RangeIgnored { get; set; }

    /// <summary>The last byte the open source stream covers (a bounded range, or the end of the file).</summary>
    public long StreamEnd { get; set; }
    public int BlocksSkipped;

    /// <summary>Connections the download reached (it may grow while more pay).</summary>
    public int Connections { get; set; }
    public bool HashesRecomputed { get; set; }
    public int BlocksUploaded;

    /// <summary>Called once the source told its size: fixes the block size and the hash state.</summary>
    public void SetSize(long size, CopyOptions settings)
    {
        if (Size is not null)
        {
            return;
        }

        Size = size;
        if (BlockSize == 0 || (size + BlockSize - 1) / BlockSize > CopyOptions.MaxBlocks)
        {
            BlockSize = settings.BlockSizeFor(size);
            Offset = 0;
        }

        Offset = Math.Min(FirstMissing(size), size);
    }

    /// <summary>The first block not staged with its full length.</summary>
    private long FirstMissing(long? size)
    {
        long offset = 0;
        while (size is null || offset < size)
        {
            var expected = size is null ? BlockSize : Math.Min(BlockSize, size.Value - offset);
            if (!Staged.TryGetValue(BlockIds.For(BlockSize, offset, Request.Generation), out var staged) || staged != expected)
            {
                break;
            }

            offset += BlockSize;
        }

        // Every block staged: the next byte is the end of the file, not past it (the last block is short).
        return size is { } known ? Math.Min(offset, known) : offset;
    }

    public void Advance(long bytes)
    {
        Offset += bytes;
        _sliceBytes += bytes;
    }

    /// <summary>Moves the offset to the hash cursor: every byte before it is staged and hashed.</summary>
    public void HashedTo(long offset) => Offset = offset;

    /// <summary>The copy runs to the end of the file in this invocation (see <see cref="FileCopier.CopyAsync"/>).</summary>
    public bool Unsliced { get; init; }

    public bool SliceExhausted(TimeProvider time) => !Unsliced && _settings.SliceEnded(_sliceBytes, time.GetElapsedTime(_startedAt));

    public CopyStatistics Statistics() =>
        new(BytesFromSource, BlocksUploaded, BlocksSkipped, SourceRestarts, HashesRecomputed, false, Connections);
}
