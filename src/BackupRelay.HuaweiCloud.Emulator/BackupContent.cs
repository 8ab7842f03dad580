using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// The bytes of an emulated backup file: a deterministic function of (backup id, file name) with
/// random access, so any range can be served, and any copy verified, without storing the file.
/// Each 8-byte word is SplitMix64(seed + index).
/// </summary>
public static class BackupContent
{
    public static ulong Seed(string backupId, string fileName) =>
        BinaryPrimitives.ReadUInt64LittleEndian(SHA256.HashData(Encoding.UTF8.GetBytes(backupId + "/" + fileName)));

    /// <summary>Fills <paramref name="destination"/> with the file's bytes starting at <paramref name="offset"/>.</summary>
    public static void Fill(ulong seed, long offset, Span<byte> destination)
    {
        var word = (ulong)(offset >> 3);
        var skip = (int)(offset & 7);
        Span<byte> scratch = stackalloc byte[8];
        var written = 0;
        if (skip != 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(scratch, Mix(seed, word++));
            var take = Math.Min(8 - skip, destination.Length);
            scratch.Slice(skip, take).CopyTo(destination);
            written = take;
        }

        while (destination.Length - written >= 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[written..], Mix(seed, word++));
            written += 8;
        }

        if (written < destination.Length)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(scratch, Mix(seed, word));
            scratch[..(destination.Length - written)].CopyTo(destination[written..]);
        }
    }

    /// <summary>MD5 and SHA-256 of a whole file, computed by generating it.</summary>
    public static (byte[] Md5, byte[] Sha256) Hashes(ulong seed, long length)
    {
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        for (long offset = 0; offset < length; offset += buffer.Length)
        {
            var chunk = buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset));
            Fill(seed, offset, chunk);
            md5.AppendData(chunk);
            sha.AppendData(chunk);
        }

        return (md5.GetHashAndReset(), sha.GetHashAndReset());
    }

    private static ulong Mix(ulong seed, ulong index)
    {
        var z = seed + ((index + 1) * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
