using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace BackupRelay.Copying;

/// <summary>One file to copy: from a download link (a secret) to a destination path.</summary>
/// <param name="CopyId">Stable id of this file copy (same on every delivery and continuation).</param>
/// <param name="RefreshLinkAsync">Fetches a fresh link when the current one expires or fails mid-stream.</param>
public sealed record CopyRequest(
    string CopyId,
    string DestinationPath,
    Uri SourceLink,
    Func<CancellationToken, Task<Uri>> RefreshLinkAsync,
    CopyContinuation? Continuation = null,
    IReadOnlyDictionary<string, string>? Metadata = null,
    int Generation = 0);

/// <summary>Where the next slice starts. Carries no secret: it goes into queue messages.</summary>
public sealed record CopyContinuation(long Offset, long Size, int BlockSize, string? SourceMd5Hex, string? SourceMultipartEtag = null);

public enum CopyOutcome
{
    Completed,
    Continue,
    Failed,
}

public sealed record CopyResult(
    CopyOutcome Outcome,
    long Length,
    string? Md5Hex,
    string? Sha256Hex,
    CopyContinuation? Continuation,
    string? FailureReason,
    CopyStatistics Statistics,
    bool ContentMismatch = false,
    string? Verification = null,
    string? VerificationNote = null);

/// <summary>What one call did (for logs, run records and tests).</summary>
/// <param name="Connections">Connections the download reached (0: none streamed).</param>
public sealed record CopyStatistics(long BytesFromSource, int BlocksUploaded, int BlocksSkipped, int SourceRestarts,
    bool HashesRecomputed, bool AlreadyComplete, int Connections = 0);

/// <summary>
/// Deterministic block ids: the same (block size, offset, generation) always gives the same id, of one
/// length. A new generation (a file copied again from scratch after its bytes did not match) never
/// reuses a block staged by an earlier one.
/// </summary>
public static partial class BlockIds
{
    public const int MaxGeneration = 8;

    public static string For(int blockSize, long offset, int generation = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(generation);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(generation, MaxGeneration);
        return Convert.ToBase64String(Encoding.ASCII.GetBytes($"br{generation + 1}-{blockSize:x8}-{offset:x16}"));
    }

    public static bool TryParse(string id, out int blockSize, out long offset) => TryParse(id, out blockSize, out offset, out _);

    public static bool TryParse(string id, out int blockSize, out long offset, out int generation)
    {
        blockSize = 0;
        offset = 0;
        generation = 0;
        Span<byte> bytes = stackalloc byte[64];
        if (!Convert.TryFromBase64String(id, bytes, out var written))
        {
            return false;
        }

        var match = Pattern().Match(Encoding.ASCII.GetString(bytes[..written]));
        generation = match.Success ? match.Groups[1].Value[0] - '1' : 0;
        return match.Success
            && int.TryParse(match.Groups[2].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out blockSize)
            && long.TryParse(match.Groups[3].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out offset);
    }

    [GeneratedRegex(@"^br([1-9])-([0-9a-f]{8})-([0-9a-f]{16})\z")]
    private static partial Regex Pattern();
}
