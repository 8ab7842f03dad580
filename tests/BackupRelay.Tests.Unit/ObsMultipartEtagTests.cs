using System.Security.Cryptography;
using System.Text;
using BackupRelay.Restores;

namespace BackupRelay.Tests.Unit;

public class ObsMultipartEtagTests
{
    private static UploadedPart Part(int number, string content, string? etag = null)
    {
        var md5 = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(content)));
        return new UploadedPart(number, content.Length, etag ?? $"\"{md5}\"", md5);
    }

    [Fact]
    public void The_expected_etag_is_the_md5_of_the_part_md5s_in_part_order_and_their_count()
    {
        var one = Part(1, "first part");
        var two = Part(2, "second part");
        var md5s = Convert.FromHexString(one.Md5Hex).Concat(Convert.FromHexString(two.Md5Hex)).ToArray();
        var expected = $"{Convert.ToHexStringLower(MD5.HashData(md5s))}-2";

        Assert.Equal(expected, ObsUploader.ExpectedMultipartEtag([two, one]));
    }

    [Fact]
    public void Parts_whose_etags_are_not_their_md5s_leave_the_object_etag_unchecked()
    {
        // Server-side encryption: OBS answers ETags that are not the MD5 of the bytes; nothing to compare with.
        Assert.Null(ObsUploader.ExpectedMultipartEtag([Part(1, "a"), Part(2, "b", etag: "\"0123456789abcdef0123456789abcdef\"")]));
    }

    [Fact]
    public void A_completed_etag_is_checked_as_a_multipart_etag_or_as_the_whole_md5_a_store_may_answer_instead()
    {
        var parts = new[] { Part(1, "first part"), Part(2, "second part") };
        var expected = ObsUploader.ExpectedMultipartEtag(parts)!;
        var whole = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes("first partsecond part")));

        Assert.Null(ObsUploader.CompletedEtagProblem($"\"{expected}\"", parts, whole));
        Assert.Null(ObsUploader.CompletedEtagProblem($"\"{whole}\"", parts, whole));
        Assert.Contains("acknowledged parts make", ObsUploader.CompletedEtagProblem("\"0123456789abcdef0123456789abcdef-2\"", parts, whole));
        Assert.Contains("acknowledged parts make", ObsUploader.CompletedEtagProblem("\"0123456789abcdef0123456789abcdef\"", parts, whole));
    }
}
