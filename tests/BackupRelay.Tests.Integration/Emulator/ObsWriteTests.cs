using System.Net;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Emulator;

/// <summary>The emulator's OBS through the S3 API, driven by AWSSDK.S3 itself: its rules and error codes.</summary>
public sealed class ObsWriteTests : EmulatorHarness
{
    private const string Bucket = "ges-restore-bucket";

    private AmazonS3Client S3(string secret = DemoSeed.SecretKey) => new(new BasicAWSCredentials(DemoSeed.AccessKey, secret), new AmazonS3Config
    {
        ServiceURL = new Uri(Emulator.BaseAddress, "obs").ToString(),
        AuthenticationRegion = DemoSeed.Region,
        ForcePathStyle = true,
        RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        MaxErrorRetry = 0,
    });

    private static UploadPartRequest Part(string key, string uploadId, int number, byte[] data) => new()
    {
        BucketName = Bucket, Key = key, UploadId = uploadId, PartNumber = number, InputStream = new MemoryStream(data),
        MD5Digest = Convert.ToBase64String(MD5.HashData(data)), UseChunkEncoding = false,
    };

    [Fact]
    public async Task Multipart_upload_lists_its_parts_completes_and_reads_back()
    {
        using var s3 = S3();
        var one = RandomNumberGenerator.GetBytes(ObsStore.MinPartSize);
        var two = RandomNumberGenerator.GetBytes(1234);
        var upload = await s3.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = Bucket, Key = "a/b.tar" });
        var etag1 = (await s3.UploadPartAsync(Part("a/b.tar", upload.UploadId, 1, one))).ETag;
        var etag2 = (await s3.UploadPartAsync(Part("a/b.tar", upload.UploadId, 2, two))).ETag;

        var listed = await s3.ListPartsAsync(new ListPartsRequest { BucketName = Bucket, Key = "a/b.tar", UploadId = upload.UploadId, MaxParts = 1 });
        Assert.Equal(1, Assert.Single(listed.Parts).PartNumber);
        Assert.True(listed.IsTruncated);
        listed = await s3.ListPartsAsync(new ListPartsRequest { BucketName = Bucket, Key = "a/b.tar", UploadId = upload.UploadId, PartNumberMarker = "1" });
        Assert.Equal(2, Assert.Single(listed.Parts).PartNumber);
        Assert.Equal(1234, listed.Parts[0].Size);

        var done = await s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = Bucket, Key = "a/b.tar", UploadId = upload.UploadId, PartETags = [new PartETag(1, etag1), new PartETag(2, etag2)],
        });
        Assert.EndsWith("-2\"", done.ETag, StringComparison.Ordinal);
        using var get = await s3.GetObjectAsync(Bucket, "a/b.tar");
        using var bytes = new MemoryStream();
        await get.ResponseStream.CopyToAsync(bytes);
        Assert.Equal([.. one, .. two], bytes.ToArray());
        Assert.Empty(State.Obs.Uploads);
    }

    [Fact]
    public async Task A_large_object_is_kept_on_disk_as_its_parts_and_read_back_by_range()
    {
        // Parts over the in-memory size go to files as they arrive; completing joins nothing: the object is its parts.
        using var s3 = S3();
        var one = RandomNumberGenerator.GetBytes(ObsStore.InMemoryMaxBytes + 5);
        var two = RandomNumberGenerator.GetBytes(ObsStore.InMemoryMaxBytes * 2);
        var upload = await s3.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = Bucket, Key = "big/x.tar" });
        var etag1 = (await s3.UploadPartAsync(Part("big/x.tar", upload.UploadId, 1, one))).ETag;
        var etag2 = (await s3.UploadPartAsync(Part("big/x.tar", upload.UploadId, 2, two))).ETag;
        await s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = Bucket, Key = "big/x.tar", UploadId = upload.UploadId, PartETags = [new PartETag(1, etag1), new PartETag(2, etag2)],
        });

        byte[] whole = [.. one, .. two];
        StoredObject stored;
        lock (State.Sync)
        {
            stored = State.Obs.Objects[(Bucket, "big/x.tar")];
        }

        Assert.Equal(whole.Length, stored.Length);
        Assert.Equal(Convert.ToHexStringLower(MD5.HashData(whole)), stored.Md5Hex);
        Assert.Equal(2, State.Obs.FilesOnDisk());

        // A range across the parts' seam, as a parallel read-back asks for it.
        var from = one.Length - 10;
        using var get = await s3.GetObjectAsync(new GetObjectRequest { BucketName = Bucket, Key = "big/x.tar", ByteRange = new ByteRange(from, from + 99) });
        using var bytes = new MemoryStream();
        await get.ResponseStream.CopyToAsync(bytes);
        Assert.Equal(HttpStatusCode.PartialContent, get.HttpStatusCode);
        Assert.Equal(whole.AsSpan(from, 100).ToArray(), bytes.ToArray());

        // Replaced, its files go; deleted, so do the new one's.
        await s3.PutObjectAsync(new PutObjectRequest { BucketName = Bucket, Key = "big/x.tar", InputStream = new MemoryStream(two), UseChunkEncoding = false });
        Assert.Equal(1, State.Obs.FilesOnDisk());
        await s3.DeleteObjectAsync(Bucket, "big/x.tar");
        Assert.Equal(0, State.Obs.FilesOnDisk());
    }

    [Fact]
    public async Task A_shaped_write_link_reads_each_body_no_faster_than_its_rate_and_answers_after_its_round_trip()
    {
        State.Settings.ObsWriteBytesPerSecondPerConnection = 1024 * 1024;
        State.Settings.ObsWriteTimeToFirstByteMs = 200;
        using var s3 = S3();
        var data = RandomNumberGenerator.GetBytes(512 * 1024);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = Bucket, Key = "shaped.bin", InputStream = new MemoryStream(data), UseChunkEncoding = false,
            MD5Digest = Convert.ToBase64String(MD5.HashData(data)),
        });

        // A lower bound only: 512 KiB at 1 MiB/s, then the answer's 200 ms.
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(650), $"512 KiB at 1 MiB/s plus 200 ms in {watch.Elapsed}");
        lock (State.Sync)
        {
            Assert.Equal(data, State.Obs.Objects[(Bucket, "shaped.bin")].ReadAll());
        }
    }

    [Fact]
    public async Task Obs_error_codes_for_wrong_parts_digests_uploads_and_buckets()
    {
        using var s3 = S3();
        var small = RandomNumberGenerator.GetBytes(1000);
        var upload = await s3.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = Bucket, Key = "e.tar" });
        var etag1 = (await s3.UploadPartAsync(Part("e.tar", upload.UploadId, 1, small))).ETag;
        var etag2 = (await s3.UploadPartAsync(Part("e.tar", upload.UploadId, 2, small))).ETag;

        async Task<string> CodeAsync(Func<Task> call) => (await Assert.ThrowsAnyAsync<AmazonS3Exception>(call)).ErrorCode;

        Assert.Equal("EntityTooSmall", await CodeAsync(() => s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = Bucket, Key = "e.tar", UploadId = upload.UploadId, PartETags = [new PartETag(1, etag1), new PartETag(2, etag2)],
        })));
        Assert.Equal("InvalidPart", await CodeAsync(() => s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = Bucket, Key = "e.tar", UploadId = upload.UploadId, PartETags = [new PartETag(1, "\"00000000000000000000000000000000\"")],
        })));

        var wrongDigest = Part("e.tar", upload.UploadId, 3, small);
        wrongDigest.MD5Digest = Convert.ToBase64String(MD5.HashData(new byte[] { 1 }));
        Assert.Equal("BadDigest", await CodeAsync(() => s3.UploadPartAsync(wrongDigest)));

        await s3.AbortMultipartUploadAsync(Bucket, "e.tar", upload.UploadId);
        Assert.Empty(State.Obs.Uploads);
        Assert.Equal("NoSuchUpload", await CodeAsync(() => s3.UploadPartAsync(Part("e.tar", upload.UploadId, 1, small))));
        Assert.Equal("NoSuchBucket", await CodeAsync(() => s3.PutObjectAsync(new PutObjectRequest { BucketName = "no-such-bucket", Key = "k", ContentBody = "x", UseChunkEncoding = false })));
        Assert.Equal("NoSuchKey", await CodeAsync(() => s3.GetObjectAsync(Bucket, "missing")));

        using var wrongKey = S3("not-the-secret");
        Assert.Equal("SignatureDoesNotMatch", await CodeAsync(() => wrongKey.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Bucket })));
    }

    [Fact]
    public async Task Chunked_bodies_and_checksum_trailers_are_refused_as_an_s3_compatible_store_may()
    {
        // The SDK's defaults (flexible checksums, aws-chunked bodies) against a store that implements neither.
        using var defaults = new AmazonS3Client(new BasicAWSCredentials(DemoSeed.AccessKey, DemoSeed.SecretKey), new AmazonS3Config
        {
            ServiceURL = new Uri(Emulator.BaseAddress, "obs").ToString(), AuthenticationRegion = DemoSeed.Region, ForcePathStyle = true, MaxErrorRetry = 0,
        });
        var error = await Assert.ThrowsAsync<AmazonS3Exception>(() => defaults.PutObjectAsync(new PutObjectRequest
        {
            BucketName = Bucket, Key = "chunked.tar", InputStream = new MemoryStream(RandomNumberGenerator.GetBytes(4096)), UseChunkEncoding = true,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
        Assert.False(State.Obs.Objects.ContainsKey((Bucket, "chunked.tar")));
        var write = Assert.Single(State.Obs.Writes(), w => w.Key == "chunked.tar");
        Assert.True(write.PayloadHash.StartsWith("STREAMING-", StringComparison.Ordinal) || write.ChecksumHeaders.Count > 0);
    }
}
