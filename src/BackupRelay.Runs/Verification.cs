namespace BackupRelay.Copying;

/// <summary>
/// What a file's "verified" rests on; recorded per file in the run record, the manifest and the
/// destination's metadata. In every case the length equals the source's and the MD5 and SHA-256 are of
/// the bytes received, checked again by the destination (Content-MD5) or hashed back from it.
/// </summary>
public static class Verification
{
    /// <summary>The source declared the file's MD5 (a plain-MD5 ETag or Content-MD5) and the bytes received match it.</summary>
    public const string SourceMd5 = "source-md5";

    /// <summary>
    /// The source's multipart ETag (<c>MD5 of the parts' MD5s-N</c>, files uploaded in parts: GES files over
    /// 16 MiB) was matched by the bytes received, with one of the part sizes that fit the file.
    /// </summary>
    public const string SourceMultipartMd5 = "source-multipart-md5";

    /// <summary>The source has no bytes (its length is 0): the copy, also empty, is all it can be.</summary>
    public const string EmptySource = "empty";

    /// <summary>The source declared no MD5; a second full read of it (<c>Copy__VerifyBySecondRead</c>) hashed to the same MD5.</summary>
    public const string SecondRead = "second-read";

    /// <summary>The source declared no MD5 and no second read was made: a corruption in transit would not be noticed.</summary>
    public const string ReceivedOnly = "received-only";

    /// <summary>
    /// Whether a file's bytes were checked against a checksum its source declared (or it has none to check):
    /// the only files a <see cref="Runs.CopyLevel.Verified"/> copy may hold.
    /// </summary>
    public static bool IsAgainstSource(string? verification) => verification is SourceMd5 or SourceMultipartMd5 or EmptySource;
}
