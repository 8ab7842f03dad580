using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Options;

namespace BackupRelay.Restores;

/// <summary>An OBS object as listed or looked up: its length and the metadata BackupRelay wrote on it.</summary>
public sealed record ObsObject(string Key, long Length, string? ETag, IReadOnlyDictionary<string, string> Metadata);

/// <summary>An object as read back from OBS: its length and the SHA-256 of the bytes served.</summary>
public sealed record ObsReadBack(long Length, string Sha256Hex);

/// <summary>An uploaded part: its number, length and the ETag OBS answered (the part's MD5 in hex).</summary>
public sealed record ObsPart(int Number, long Length, string ETag);

/// <summary>
/// What OBS refused. <see cref="Transient"/>: worth another delivery (5xx, throttling, connection
/// lost after the S3 client's own retries); otherwise a fact about the request (missing upload,
/// refused digest, denied). Carries OBS's code and request id, never a credential or a signature.
/// </summary>
public sealed class ObsException(string operation, HttpStatusCode? status, string? code, string message, bool transient, Exception? inner = null)
    : Exception($"OBS {operation} failed: {(status is null ? "" : $"{(int)status.Value} ")}{code} {message}".TrimEnd(), inner)
{
    public HttpStatusCode? Status { get; } = status;
    public string? Code { get; } = code;
    public bool Transient { get; } = transient;
    public bool IsNoSuchUpload => Code == "NoSuchUpload";
}

/// <summary>
/// OBS writes through <b>AWSSDK.S3</b> (OBS speaks the S3 API): path-style addressing at the region's
/// OBS endpoint, Signature V4 with the configured AK/SK. AWSSDK.S3 4.x would by default add flexible
/// checksums (CRC32 trailers) and send <c>aws-chunked</c> bodies, which S3-compatible stores such as
/// OBS may refuse; checksums are configured "when required" and chunk encoding is off on every write,
/// so each body goes as is, with a Content-MD5 that OBS checks. Over HTTPS the payload is not hashed
/// for the signature (TLS and Content-MD5 already protect it; that SHA-256 pass would cost as much CPU
/// as the copy's own).
/// </summary>
public sealed class ObsClient : IDisposable
{
    private readonly AmazonS3Client _s3;
    private readonly bool _https;

    public ObsClient(IOptions<ObsOptions> options)
    {
        var settings = options.Value;
        _https = settings.Endpoint?.Scheme == "https";
        var config = new AmazonS3Config
        {
            ServiceURL = settings.Endpoint?.ToString() ?? "https://obs.invalid",
            AuthenticationRegion = string.IsNullOrEmpty(settings.Region) ? "cn-north-4" : settings.Region,
            ForcePathStyle = true,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = settings.MaxErrorRetry,
            RetryMode = RequestRetryMode.Standard,
            Timeout = settings.RequestTimeout,
            UseHttp = settings.Endpoint?.Scheme == "http",
            LogResponse = false,
            LogMetrics = false,
            DisableLogging = true,
        };
        _s3 = new AmazonS3Client(new BasicAWSCredentials(settings.AccessKeyId ?? "unset", settings.SecretAccessKey ?? "unset"), config);
    }

    /// <summary>Writes a whole object in one request (a file no larger than one part).</summary>
    public Task<string> PutObjectAsync(string bucket, string key, byte[] buffer, int length, byte[] md5, IReadOnlyDictionary<string, string> metadata,
        CancellationToken cancellationToken) => CallAsync("PutObject", async () =>
    {
        var request = new PutObjectRequest
        {
            BucketName = bucket,
            Key = key,
            InputStream = new MemoryStream(buffer, 0, length, writable: false),
            AutoCloseStream = true,
            MD5Digest = Convert.ToBase64String(md5),
            UseChunkEncoding = false,
            DisablePayloadSigning = _https,
            ContentType = "application/octet-stream",
        };
        AddMetadata(request.Metadata, metadata);
        return (await _s3.PutObjectAsync(request, cancellationToken)).ETag;
    });

    public Task<string> InitiateAsync(string bucket, string key, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken) =>
        CallAsync("InitiateMultipartUpload", async () =>
        {
            var request = new InitiateMultipartUploadRequest { BucketName = bucket, Key = key, ContentType = "application/octet-stream" };
            AddMetadata(request.Metadata, metadata);
            return (await _s3.InitiateMultipartUploadAsync(request, cancellationToken)).UploadId;
        });

    public Task<string> UploadPartAsync(string bucket, string key, string uploadId, int partNumber, ReadOnlyMemory<byte> data, byte[] md5,
        CancellationToken cancellationToken) => CallAsync("UploadPart", async () =>
    {
        var part = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var array) ? array : new ArraySegment<byte>(data.ToArray());
        var response = await _s3.UploadPartAsync(new UploadPartRequest
        {
            BucketName = bucket,
            Key = key,
            UploadId = uploadId,
            PartNumber = partNumber,
            InputStream = new MemoryStream(part.Array!, part.Offset, part.Count, writable: false),
            PartSize = part.Count,
            MD5Digest = Convert.ToBase64String(md5),
            UseChunkEncoding = false,
            DisablePayloadSigning = _https,
        }, cancellationToken);
        return response.ETag;
    });

    public Task<string> CompleteAsync(string bucket, string key, string uploadId, IEnumerable<ObsPart> parts, CancellationToken cancellationToken) =>
        CallAsync("CompleteMultipartUpload", async () =>
        {
            var request = new CompleteMultipartUploadRequest { BucketName = bucket, Key = key, UploadId = uploadId };
            request.PartETags = [.. parts.OrderBy(p => p.Number).Select(p => new PartETag(p.Number, p.ETag))];
            return (await _s3.CompleteMultipartUploadAsync(request, cancellationToken)).ETag;
        });

    public Task AbortAsync(string bucket, string key, string uploadId, CancellationToken cancellationToken) =>
        CallAsync("AbortMultipartUpload", async () =>
        {
            await _s3.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = bucket, Key = key, UploadId = uploadId }, cancellationToken);
            return true;
        });

    /// <summary>The object's length and metadata, or null when there is none.</summary>
    public Task<ObsObject?> HeadAsync(string bucket, string key, CancellationToken cancellationToken) => CallAsync("HeadObject", async () =>
    {
        try
        {
            var response = await _s3.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = bucket, Key = key }, cancellationToken);
            var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var name in response.Metadata.Keys)
            {
                metadata[name.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase) ? name["x-amz-meta-".Length..] : name] = response.Metadata[name];
            }

            return new ObsObject(key, response.ContentLength, response.ETag, metadata);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    });

    /// <summary>
    /// Reads <paramref name="buffer"/>'s length of the object from <paramref name="offset"/> (one ranged GET) into it;
    /// returns how many bytes OBS served (fewer: the object ends sooner). A connection lost mid-body is transient.
    /// </summary>
    public Task<int> ReadRangeAsync(string bucket, string key, long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        CallAsync("GetObject", async () =>
        {
            using var response = await _s3.GetObjectAsync(new GetObjectRequest
            {
                BucketName = bucket, Key = key, ByteRange = new ByteRange(offset, offset + buffer.Length - 1),
            }, cancellationToken);
            return await response.ResponseStream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
        });

    /// <summary>Deletes the object (absent already: nothing to do, as S3 answers).</summary>
    public Task DeleteAsync(string bucket, string key, CancellationToken cancellationToken) => CallAsync("DeleteObject", async () =>
    {
        await _s3.DeleteObjectAsync(new DeleteObjectRequest { BucketName = bucket, Key = key }, cancellationToken);
        return true;
    });

    /// <summary>Every object under <paramref name="prefix"/> (all pages).</summary>
    public Task<List<ObsObject>> ListAsync(string bucket, string prefix, CancellationToken cancellationToken) => CallAsync("ListObjects", async () =>
    {
        var found = new List<ObsObject>();
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = prefix };
        ListObjectsV2Response page;
        do
        {
            page = await _s3.ListObjectsV2Async(request, cancellationToken);
            found.AddRange((page.S3Objects ?? []).Select(o => new ObsObject(o.Key, o.Size ?? 0, o.ETag, new Dictionary<string, string>())));
            request.ContinuationToken = page.NextContinuationToken;
        }
        while (page.IsTruncated == true);
        return found;
    });

    /// <summary>The object's metadata (<c>x-amz-meta-*</c>: the run and the hashes a later delivery recognises the object by).</summary>
    private static void AddMetadata(MetadataCollection target, IReadOnlyDictionary<string, string> metadata)
    {
        foreach (var (name, value) in metadata)
        {
            target.Add(name, value);
        }
    }

    private static async Task<T> CallAsync<T>(string operation, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (AmazonS3Exception ex)
        {
            var status = ex.StatusCode;
            var transient = (int)status >= 500 || status is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout || ex.ErrorCode is "SlowDown" or "RequestTimeout" or "BadDigest";
            throw new ObsException(operation, status, ex.ErrorCode, ex.Message, transient, ex);
        }
        catch (AmazonServiceException ex)
        {
            // Connection lost, timed out, or an answer that could not be read: after the client's own retries.
            throw new ObsException(operation, null, "NetworkError", ex.Message, transient: true, ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or TimeoutException or AmazonClientException)
        {
            throw new ObsException(operation, null, "NetworkError", ex.Message, transient: true, ex);
        }
    }

    public void Dispose() => _s3.Dispose();
}
