using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Unit;

public sealed class BackupContentTests
{
    [Fact]
    public void Any_range_equals_the_same_slice_of_the_whole()
    {
        var seed = BackupContent.Seed("backup-1", "file-01.tar");
        var whole = new byte[1000];
        BackupContent.Fill(seed, 0, whole);
        foreach (var (offset, length) in new[] { (0, 1), (1, 7), (3, 8), (7, 9), (8, 16), (13, 500), (999, 1), (5, 995) })
        {
            var part = new byte[length];
            BackupContent.Fill(seed, offset, part);
            Assert.Equal(whole.AsSpan(offset, length).ToArray(), part);
        }
    }

    [Fact]
    public void Different_files_and_backups_have_different_bytes()
    {
        var a = new byte[64];
        var b = new byte[64];
        var c = new byte[64];
        BackupContent.Fill(BackupContent.Seed("b1", "f1"), 0, a);
        BackupContent.Fill(BackupContent.Seed("b1", "f2"), 0, b);
        BackupContent.Fill(BackupContent.Seed("b2", "f1"), 0, c);
        Assert.NotEqual(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Hashes_match_hashing_the_generated_bytes()
    {
        var seed = BackupContent.Seed("b", "f");
        var bytes = new byte[200_001];
        BackupContent.Fill(seed, 0, bytes);
        var (md5, sha) = BackupContent.Hashes(seed, bytes.Length);
        Assert.Equal(System.Security.Cryptography.MD5.HashData(bytes), md5);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(bytes), sha);
    }
}
