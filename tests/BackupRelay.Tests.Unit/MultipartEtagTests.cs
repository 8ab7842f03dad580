using System.Security.Cryptography;
using BackupRelay.Copying;

namespace BackupRelay.Tests.Unit;

public sealed class MultipartEtagTests
{
    private const long MiB = 1024 * 1024;

    private static string EtagOf(byte[] data, long partSize)
    {
        using var outer = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        var parts = 0;
        for (long at = 0; at < data.Length; at += partSize, parts++)
        {
            outer.AppendData(MD5.HashData(data.AsSpan((int)at, (int)Math.Min(partSize, data.Length - at))));
        }

        return $"\"{Convert.ToHexStringLower(outer.GetHashAndReset())}-{parts}\"";
    }

    [Theory]
    [InlineData(50 * MiB, 7, 8 * MiB)]
    [InlineData(17 * MiB + 9, 3, 8 * MiB)]
    [InlineData(100 * MiB, 2, 64 * MiB)]
    public void The_part_sizes_that_fit_are_tried_most_likely_first(long size, int parts, long first)
    {
        var sizes = MultipartEtagCheck.LikelyPartSizes(size, parts);
        Assert.Equal(first, sizes[0]);
        Assert.InRange(sizes.Count, 1, MultipartEtagCheck.MaxCandidates);
        Assert.All(sizes, p => Assert.True((parts - 1) * p < size && parts * p >= size, $"{p} does not fit"));
    }

    [Fact]
    public void A_part_count_that_cannot_hold_the_file_gives_no_check() =>
        Assert.Null(MultipartEtagCheck.For("\"0123456789abcdef0123456789abcdef-3\"", 2));

    [Theory]
    [InlineData(5 * MiB)]
    [InlineData(8 * MiB)]
    [InlineData(2970967)] // the even split of the file into 6 parts
    public void Bytes_fed_in_any_chunks_match_the_etag_of_their_parts(long partSize)
    {
        var data = new byte[(int)(17 * MiB + 9)];
        new Random(7).NextBytes(data);
        using var check = MultipartEtagCheck.For(EtagOf(data, partSize), data.Length)!;
        for (var at = 0; at < data.Length; at += 777_777)
        {
            check.Append(data.AsSpan(at, Math.Min(777_777, data.Length - at)));
        }

        Assert.Equal(partSize, check.MatchedPartSize());
    }

    [Fact]
    public void One_changed_byte_matches_no_part_size()
    {
        var data = new byte[(int)(17 * MiB + 9)];
        new Random(7).NextBytes(data);
        var etag = EtagOf(data, 8 * MiB);
        data[12345] ^= 1;
        using var check = MultipartEtagCheck.For(etag, data.Length)!;
        check.Append(data);
        Assert.Null(check.MatchedPartSize());
    }

    [Theory]
    [InlineData("\"0123456789abcdef0123456789abcdef\"")]
    [InlineData("\"not-a-multipart-etag-3\"")]
    [InlineData(null)]
    public void An_etag_without_the_multipart_form_gives_no_check(string? etag) => Assert.Null(MultipartEtagCheck.For(etag, 17 * MiB));
}
