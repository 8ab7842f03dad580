using System.ComponentModel.DataAnnotations;

namespace BackupRelay.Copying;

/// <summary>When a copy computes the MD5 of the whole file (<c>Copy__WholeFileMd5</c>).</summary>
public enum WholeFileMd5
{
    /// <summary>Where something reads it: the source declares a plain MD5, or no multipart ETag proves the copy (default).</summary>
    WhenNeeded,

    /// <summary>Always, so every blob carries a Content-MD5 (one more MD5 pass over files whose multipart ETag already proves them).</summary>
    Always,
}

public enum CopyMode
{
    /// <summary>Bytes flow through BackupRelay: read the link, hash, upload blocks (default).</summary>
    Streaming,

    /// <summary>The destination fetches each block from the link itself (Put Block From URL); the source must be reachable by it.</summary>
    ServerSide,
}

/// <summary>How files are copied (app settings <c>Copy__*</c>).</summary>
public sealed class CopyOptions
{
    public const string SectionName = "Copy";

    /// <summary>Smallest block size; grows with the file so a file stays under <see cref="MaxBlocks"/> blocks.</summary>
    [Range(64 * 1024, 256L * 1024 * 1024)]
    public int BlockSizeBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>
    /// Connections one file is downloaded over, each streaming long ranges of it (one cross-cloud TCP stream is
    /// bounded by window / round trip and object stores cap each connection). 1: one stream, as <c>rclone copyurl</c>.
    /// A source that ignores Range is read over one stream. Each connection holds one 1 MiB chunk of the buffer budget.
    /// 16 measured best on a WAN-shaped source (docs/benchmarks.md).
    /// </summary>
    [Range(1, 32)]
    public int DownloadConnections { get; set; } = 16;

    /// <summary>
    /// The most connections a download grows to while each step raises its rate by a tenth and its hashes keep up
    /// (it starts with <see cref="DownloadConnections"/>; each added connection takes a chunk the budget can spare).
    /// At or below <see cref="DownloadConnections"/>: no growth.
    /// </summary>
    [Range(1, 64)]
    public int MaxDownloadConnections { get; set; } = 32;

    /// <summary>How often a download asks whether one more step of connections pays (not a setting: tests shorten it).</summary>
    internal TimeSpan AdaptInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Where the spool files of copies into a block store (Blob) go (empty: the system's temporary directory): the
    /// connections' long ranges land there, each block is uploaded once whole and hashed back from it in file order
    /// (on Linux its bytes leave the disk once uploaded and hashed).
    /// </summary>
    public string? SpoolDirectory { get; set; }

    /// <summary>Blocks of one file uploaded at once.</summary>
    [Range(1, 64)]
    public int MaxConcurrency { get; set; } = 4;

    /// <summary>Buffer memory all copies in the process share; a copy waits for its share.</summary>
    [Range(1024 * 1024, 16L * 1024 * 1024 * 1024)]
    public long MemoryBudgetBytes { get; set; } = 96L * 1024 * 1024;

    /// <summary>Most bytes one slice copies before returning a continuation; 0: no byte limit.</summary>
    [Range(0, long.MaxValue)]
    public long SliceMaxBytes { get; set; }

    /// <summary>Longest one slice runs before returning a continuation (keep under the plan's function timeout).</summary>
    public TimeSpan SliceMaxDuration { get; set; } = TimeSpan.FromMinutes(7);

    /// <summary>
    /// Whether a slice that moved <paramref name="bytes"/> in <paramref name="elapsed"/> has had its share: the one rule for
    /// the copy, the upload to OBS and a drill's read-back.
    /// </summary>
    public bool SliceEnded(long bytes, TimeSpan elapsed) => (SliceMaxBytes > 0 && bytes >= SliceMaxBytes) || elapsed >= SliceMaxDuration;

    /// <summary>Consecutive source failures (expired link, dropped connection) tolerated without progress.</summary>
    [Range(1, 100)]
    public int MaxSourceAttempts { get; set; } = 5;

    /// <summary>
    /// Times a file is copied from scratch when the bytes received do not match the source (its declared
    /// MD5 or length) before the file fails: a corruption in transit is usually not there the next time.
    /// </summary>
    [Range(1, BlockIds.MaxGeneration + 1)]
    public int MaxContentAttempts { get; set; } = 3;

    /// <summary>
    /// For a file whose source declares neither an MD5 nor a usable multipart ETag, read the source a second time
    /// and compare MD5s before committing: a corruption in transit is then caught,
    /// at the cost of downloading the file twice. Off by default.
    /// </summary>
    public bool VerifyBySecondRead { get; set; }

    /// <summary>Send each block's MD5 so the destination checks it on arrival (costs one more MD5 pass; TLS already protects transport).</summary>
    public bool BlockContentMd5 { get; set; }

    public CopyMode Mode { get; set; } = CopyMode.Streaming;

    /// <summary>
    /// When the whole file's MD5 is computed: <see cref="WholeFileMd5.WhenNeeded"/> skips it for a file whose source's
    /// multipart ETag proves the copy (its part MD5s are computed instead; SHA-256 proves it at rest), which leaves that
    /// blob without a Content-MD5 and its manifest entry without an MD5.
    /// </summary>
    public WholeFileMd5 WholeFileMd5 { get; set; } = WholeFileMd5.WhenNeeded;

    /// <summary>Azure's limit on blocks per blob.</summary>
    public const int MaxBlocks = 50_000;

    /// <summary>Block size for a file of <paramref name="size"/> bytes: the configured size, or larger (whole MiB) to stay under <see cref="MaxBlocks"/>.</summary>
    public int BlockSizeFor(long size)
    {
        const long mib = 1024 * 1024;
        var needed = (size + MaxBlocks - 1) / MaxBlocks;
        if (needed <= BlockSizeBytes)
        {
            return BlockSizeBytes;
        }

        return (int)Math.Min((needed + mib - 1) / mib * mib, int.MaxValue / mib * mib);
    }
}
