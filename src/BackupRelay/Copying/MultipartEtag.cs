using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace BackupRelay.Copying;

/// <summary>
/// The source's checksum for a file uploaded in parts: OBS (like S3) gives it the ETag
/// <c>MD5(MD5(part 1) … MD5(part N))-N</c>. The part size is not in the ETag, but all parts but the last
/// are equal, so only sizes with (N - 1) × size &lt; file size ≤ N × size fit; of those, the sizes upload
/// tools use (whole MiB, or the even split) are hashed at once as the bytes stream by, and the copy is
/// verified against the source when one of them gives the ETag. Hand-written: no library computes it
/// incrementally for several part sizes.
/// </summary>
public sealed partial class MultipartEtagCheck : IDisposable
{
    /// <summary>Most part sizes hashed at once (each is one more MD5 over the bytes).</summary>
    public const int MaxCandidates = 6;

    private readonly Candidate[] _candidates;

    private MultipartEtagCheck(string digest, int parts, IEnumerable<long> partSizes)
    {
        Digest = digest;
        Parts = parts;
        _candidates = [.. partSizes.Select(size => new Candidate(size))];
    }

    public string Digest { get; }

    public int Parts { get; }

    /// <summary>The part sizes being tried.</summary>
    public IReadOnlyList<long> Candidates => [.. _candidates.Select(c => c.PartSize)];

    /// <summary>A check for <paramref name="etag"/> (quoted or not) on a file of <paramref name="size"/> bytes; null when it is not a usable multipart ETag.</summary>
    public static MultipartEtagCheck? For(string? etag, long? size)
    {
        if (etag is null || size is not > 0 || Pattern().Match(etag.Trim('"')) is not { Success: true } match
            || !int.TryParse(match.Groups[2].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var parts) || parts < 1 || parts > 10_000)
        {
            return null;
        }

        var sizes = LikelyPartSizes(size.Value, parts);
        return sizes.Count == 0 ? null : new MultipartEtagCheck(match.Groups[1].Value.ToLowerInvariant(), parts, sizes);
    }

    /// <summary>True when <paramref name="etag"/> has the multipart form (<c>hex-N</c>).</summary>
    public static bool IsMultipart(string? etag) => etag is not null && Pattern().IsMatch(etag.Trim('"'));

    /// <summary>The part sizes worth trying for a file of <paramref name="size"/> bytes in <paramref name="parts"/> parts, most likely first.</summary>
    public static IReadOnlyList<long> LikelyPartSizes(long size, int parts)
    {
        if (parts == 1)
        {
            return [size];
        }

        const long MiB = 1024 * 1024;
        var smallest = (size + parts - 1) / parts;     // N parts must hold the file
        var largest = (size - 1) / (parts - 1);         // N - 1 parts must not
        if (smallest > largest)
        {
            return [];
        }

        var whole = new List<long>();
        for (var mib = (smallest + MiB - 1) / MiB; mib * MiB <= largest && whole.Count < 64; mib++)
        {
            whole.Add(mib * MiB);
        }

        // Powers of two first (8, 16, 64 MiB …), then multiples of 5 MiB (the S3 minimum), then the rest; the even split last.
        var ordered = whole.OrderBy(s => long.IsPow2(s / MiB) ? 0 : s / MiB % 5 == 0 ? 1 : 2).ThenBy(s => s).ToList();
        if (!ordered.Contains(smallest))
        {
            ordered.Add(smallest);
        }

        return ordered.Count <= MaxCandidates ? ordered : [.. ordered.Where(s => s != smallest).Take(MaxCandidates - 1), smallest];
    }

    /// <summary>The next bytes of the file, in order.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        foreach (var candidate in _candidates)
        {
            candidate.Append(data);
        }
    }

    /// <summary>The part size whose multipart MD5 is the ETag's, once every byte was appended; null when none is. Call once.</summary>
    public long? MatchedPartSize() => _candidates.FirstOrDefault(c => c.Finish() == (Digest, Parts))?.PartSize;

    public void Dispose()
    {
        foreach (var candidate in _candidates)
        {
            candidate.Dispose();
        }
    }

    [GeneratedRegex(@"^([0-9a-fA-F]{32})-([0-9]{1,5})\z")]
    private static partial Regex Pattern();

    private sealed class Candidate(long partSize) : IDisposable
    {
        private readonly IncrementalHash _part = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        private readonly IncrementalHash _outer = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        private long _filled;
        private int _count;

        public long PartSize { get; } = partSize;

        public void Append(ReadOnlySpan<byte> data)
        {
            while (!data.IsEmpty)
            {
                var take = (int)Math.Min(data.Length, PartSize - _filled);
                _part.AppendData(data[..take]);
                _filled += take;
                data = data[take..];
                if (_filled == PartSize)
                {
                    _outer.AppendData(_part.GetHashAndReset());
                    (_filled, _count) = (0, _count + 1);
                }
            }
        }

        public (string Digest, int Parts) Finish()
        {
            if (_filled > 0)
            {
                _outer.AppendData(_part.GetHashAndReset());
                (_filled, _count) = (0, _count + 1);
            }

            return (Convert.ToHexStringLower(_outer.GetHashAndReset()), _count);
        }

        public void Dispose()
        {
            _part.Dispose();
            _outer.Dispose();
        }
    }
}
