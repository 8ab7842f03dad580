using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security;
using System.Text;
using System.Xml.Linq;

namespace BackupRelay.Storage.Blobs;

/// <summary>Conditions and properties for a blob write.</summary>
public sealed record BlobWriteOptions
{
    /// <summary>Write only if the blob's ETag is this (optimistic concurrency).</summary>
    public string? IfMatch { get; init; }

    /// <summary>Write only if no blob exists (<c>If-None-Match: *</c>).</summary>
    public bool IfNotExists { get; init; }

    public string? ContentType { get; init; }

    /// <summary>MD5 of the whole blob: Content-MD5 on a put, <c>x-ms-blob-content-md5</c> on a block list.</summary>
    public byte[]? ContentMd5 { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}

public sealed record BlobProperties(long Length, string ETag, byte[]? ContentMd5, string? ContentType,
    DateTimeOffset? LastModified, IReadOnlyDictionary<string, string> Metadata);

public sealed record BlobDownload(byte[] Content, BlobProperties Properties);

public sealed record BlobBlock(string Id, long Size);

public sealed record BlockList(IReadOnlyList<BlobBlock> Committed, IReadOnlyList<BlobBlock> Uncommitted);

public sealed record BlobItem(string Name, long Length, string? ETag, byte[]? ContentMd5, DateTimeOffset? LastModified);

/// <summary>A blob container over REST: small blobs with ETag conditions, block blobs for large files, listing.</summary>
public sealed class BlobContainer(StorageHttp http, Uri containerUri, string name)
{
    public string Name { get; } = name;
    public Uri Uri { get; } = containerUri;

    /// <summary>The blob's URL; each '/'-separated segment of the name is escaped.</summary>
    public Uri BlobUri(string blobName) =>
        new(Uri.AbsoluteUri.TrimEnd('/') + "/" + string.Join('/', blobName.Split('/').Select(Uri.EscapeDataString)));

    /// <summary>Creates the container (private unless <paramref name="publicBlobAccess"/>); false when it already existed.</summary>
    public async Task<bool> CreateIfNotExistsAsync(bool publicBlobAccess = false, CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, Uri.AbsoluteUri.TrimEnd('/') + "?restype=container");
            if (publicBlobAccess)
            {
                request.Headers.TryAddWithoutValidation("x-ms-blob-public-access", "blob");
            }

            return request;
        }, cancellationToken);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            return false;
        }

        await StorageHttp.EnsureSuccessAsync(response, $"Create container {Name}", cancellationToken);
        return true;
    }

    /// <summary>Writes a whole block blob in one request; 412/409 come back as the outcome, not an exception.</summary>
    public async Task<WriteResult> PutBlobAsync(string blobName, ReadOnlyMemory<byte> content, BlobWriteOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, BlobUri(blobName)) { Content = new ReadOnlyMemoryContent(content) };
            request.Headers.TryAddWithoutValidation("x-ms-blob-type", "BlockBlob");
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(options?.ContentType ?? "application/octet-stream");
            if (options?.ContentMd5 is { } md5)
            {
                request.Content.Headers.ContentMD5 = md5;
            }

            Apply(request, options);
            return request;
        }, cancellationToken);
        return await WriteOutcomeAsync(response, $"Put blob {blobName}", cancellationToken);
    }

    /// <summary>The whole blob, or null when it does not exist.</summary>
    public async Task<BlobDownload?> GetBlobAsync(string blobName, CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, BlobUri(blobName)), cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        await StorageHttp.EnsureSuccessAsync(response, $"Get blob {blobName}", cancellationToken);
        return new BlobDownload(await response.Content.ReadAsByteArrayAsync(cancellationToken), Properties(response));
    }

    /// <summary>Streams <paramref name="length"/> bytes (null: to the end) from <paramref name="offset"/>. Dispose the stream.</summary>
    public async Task<Stream> OpenReadAsync(string blobName, long offset = 0, long? length = null, CancellationToken cancellationToken = default)
    {
        var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, BlobUri(blobName));
            if (offset > 0 || length is not null)
            {
                var end = length is { } l ? (offset + l - 1).ToString(CultureInfo.InvariantCulture) : "";
                request.Headers.TryAddWithoutValidation("x-ms-range", $"bytes={offset}-{end}");
            }

            return request;
        }, cancellationToken, HttpCompletionOption.ResponseHeadersRead);
        try
        {
            await StorageHttp.EnsureSuccessAsync(response, $"Read blob {blobName}", cancellationToken);
            return new ResponseStream(await response.Content.ReadAsStreamAsync(cancellationToken), response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    public async Task<BlobProperties?> GetPropertiesAsync(string blobName, CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Head, BlobUri(blobName)), cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        await StorageHttp.EnsureSuccessAsync(response, $"Get properties of blob {blobName}", cancellationToken);
        return Properties(response);
    }

    /// <summary>Uploads one uncommitted block. Block ids are base64 and of one length within a blob.</summary>
    public async Task PutBlockAsync(string blobName, string blockId, ReadOnlyMemory<byte> data, byte[]? md5 = null,
        CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, BlockUri(blobName, blockId)) { Content = new ReadOnlyMemoryContent(data) };
            if (md5 is not null)
            {
                request.Content.Headers.ContentMD5 = md5;
            }

            return request;
        }, cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Put block of {blobName}", cancellationToken);
    }

    /// <summary>
    /// Server-side copy of <paramref name="length"/> bytes at <paramref name="offset"/> of
    /// <paramref name="source"/> into an uncommitted block. The source must be reachable by the service.
    /// </summary>
    public async Task PutBlockFromUrlAsync(string blobName, string blockId, Uri source, long offset, long length,
        string? sourceAuthorization = null, CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, BlockUri(blobName, blockId)) { Content = new ByteArrayContent([]) };
            request.Headers.TryAddWithoutValidation("x-ms-copy-source", source.AbsoluteUri);
            request.Headers.TryAddWithoutValidation("x-ms-source-range", $"bytes={offset}-{offset + length - 1}");
            if (sourceAuthorization is not null)
            {
                request.Headers.TryAddWithoutValidation("x-ms-copy-source-authorization", sourceAuthorization);
            }

            return request;
        }, cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Put block from URL into {blobName}", cancellationToken);
    }

    /// <summary>Committed and uncommitted blocks; both empty when the blob does not exist.</summary>
    public async Task<BlockList> GetBlockListAsync(string blobName, CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, BlobUri(blobName).AbsoluteUri + "?comp=blocklist&blocklisttype=all"), cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return new BlockList([], []);
        }

        await StorageHttp.EnsureSuccessAsync(response, $"Get block list of {blobName}", cancellationToken);
        var root = XDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken)).Root!;
        return new BlockList(Blocks(root.Element("CommittedBlocks")), Blocks(root.Element("UncommittedBlocks")));

        static List<BlobBlock> Blocks(XElement? e) => e is null ? [] :
        [
            .. e.Elements("Block").Select(b => new BlobBlock(b.Element("Name")!.Value,
                long.Parse(b.Element("Size")!.Value, CultureInfo.InvariantCulture))),
        ];
    }

    /// <summary>Commits the blob from these blocks (latest version of each), with its MD5, type and metadata.</summary>
    public async Task<WriteResult> PutBlockListAsync(string blobName, IEnumerable<string> blockIds, BlobWriteOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var xml = new StringBuilder("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        foreach (var id in blockIds)
        {
            xml.Append("<Latest>").Append(SecurityElement.Escape(id)).Append("</Latest>");
        }

        var body = Encoding.UTF8.GetBytes(xml.Append("</BlockList>").ToString());
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, BlobUri(blobName).AbsoluteUri + "?comp=blocklist") { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/xml");
            if (options?.ContentMd5 is { } md5)
            {
                request.Headers.TryAddWithoutValidation("x-ms-blob-content-md5", Convert.ToBase64String(md5));
            }

            request.Headers.TryAddWithoutValidation("x-ms-blob-content-type", options?.ContentType ?? "application/octet-stream");
            Apply(request, options);
            return request;
        }, cancellationToken);
        return await WriteOutcomeAsync(response, $"Put block list of {blobName}", cancellationToken);
    }

    /// <summary>Sets the blob's stored Content-MD5 and content type (other content headers are cleared).</summary>
    public async Task SetPropertiesAsync(string blobName, byte[]? contentMd5, string contentType = "application/octet-stream",
        CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, BlobUri(blobName).AbsoluteUri + "?comp=properties");
            if (contentMd5 is not null)
            {
                request.Headers.TryAddWithoutValidation("x-ms-blob-content-md5", Convert.ToBase64String(contentMd5));
            }

            request.Headers.TryAddWithoutValidation("x-ms-blob-content-type", contentType);
            return request;
        }, cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Set properties of {blobName}", cancellationToken);
    }

    /// <summary>Replaces the blob's metadata.</summary>
    public async Task SetMetadataAsync(string blobName, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, BlobUri(blobName).AbsoluteUri + "?comp=metadata");
            Apply(request, new BlobWriteOptions { Metadata = metadata });
            return request;
        }, cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Set metadata of {blobName}", cancellationToken);
    }

    /// <summary>Every blob whose name starts with <paramref name="prefix"/>, page after page.</summary>
    public async IAsyncEnumerable<BlobItem> ListAsync(string? prefix = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? marker = null;
        do
        {
            var query = "?restype=container&comp=list&maxresults=1000"
                + (prefix is null ? "" : "&prefix=" + Uri.EscapeDataString(prefix))
                + (marker is null ? "" : "&marker=" + Uri.EscapeDataString(marker));
            using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, Uri.AbsoluteUri.TrimEnd('/') + query), cancellationToken);
            await StorageHttp.EnsureSuccessAsync(response, $"List blobs of {Name}", cancellationToken);
            var root = XDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken)).Root!;
            foreach (var blob in root.Element("Blobs")?.Elements("Blob") ?? [])
            {
                var p = blob.Element("Properties");
                yield return new BlobItem(
                    blob.Element("Name")!.Value,
                    long.Parse(p?.Element("Content-Length")?.Value ?? "0", CultureInfo.InvariantCulture),
                    p?.Element("Etag")?.Value,
                    p?.Element("Content-MD5")?.Value is { Length: > 0 } md5 ? Convert.FromBase64String(md5) : null,
                    p?.Element("Last-Modified")?.Value is { } lm && DateTimeOffset.TryParse(lm, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null);
            }

            marker = root.Element("NextMarker")?.Value;
        }
        while (!string.IsNullOrEmpty(marker));
    }

    /// <summary>Deletes the blob (and its snapshots); false when it did not exist.</summary>
    public async Task<bool> DeleteAsync(string blobName, string? ifMatch = null, CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Delete, BlobUri(blobName));
            request.Headers.TryAddWithoutValidation("x-ms-delete-snapshots", "include");
            if (ifMatch is not null)
            {
                request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
            }

            return request;
        }, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        await StorageHttp.EnsureSuccessAsync(response, $"Delete blob {blobName}", cancellationToken);
        return true;
    }

    private Uri BlockUri(string blobName, string blockId) =>
        new(BlobUri(blobName).AbsoluteUri + "?comp=block&blockid=" + Uri.EscapeDataString(blockId));

    private static void Apply(HttpRequestMessage request, BlobWriteOptions? options)
    {
        if (options is null)
        {
            return;
        }

        if (options.IfMatch is { } etag)
        {
            request.Headers.TryAddWithoutValidation("If-Match", etag);
        }

        if (options.IfNotExists)
        {
            request.Headers.TryAddWithoutValidation("If-None-Match", "*");
        }

        foreach (var (key, value) in options.Metadata ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation("x-ms-meta-" + key, value);
        }
    }

    private static async Task<WriteResult> WriteOutcomeAsync(HttpResponseMessage response, string operation, CancellationToken cancellationToken)
    {
        switch (response.StatusCode)
        {
            case HttpStatusCode.PreconditionFailed:
                return new WriteResult(WriteOutcome.PreconditionFailed, null);
            case HttpStatusCode.Conflict:
                return new WriteResult(WriteOutcome.Conflict, null);
            default:
                await StorageHttp.EnsureSuccessAsync(response, operation, cancellationToken);
                return new WriteResult(WriteOutcome.Written, response.Headers.ETag?.Tag);
        }
    }

    private static BlobProperties Properties(HttpResponseMessage response)
    {
        var content = response.Content.Headers;
        var metadata = response.Headers
            .Where(h => h.Key.StartsWith("x-ms-meta-", StringComparison.OrdinalIgnoreCase))
            .ToDictionary(h => h.Key["x-ms-meta-".Length..], h => string.Join(',', h.Value), StringComparer.OrdinalIgnoreCase);
        var length = response.Headers.TryGetValues("x-ms-blob-content-length", out var l)
            ? long.Parse(l.First(), CultureInfo.InvariantCulture)
            : content.ContentRange?.Length ?? content.ContentLength ?? 0;
        var md5 = content.ContentMD5
            ?? (response.Headers.TryGetValues("x-ms-blob-content-md5", out var m) ? Convert.FromBase64String(m.First()) : null);
        return new BlobProperties(length, response.Headers.ETag?.Tag ?? "", md5, content.ContentType?.ToString(), content.LastModified, metadata);
    }

    /// <summary>A response body that disposes its response with it.</summary>
    private sealed class ResponseStream(Stream inner, HttpResponseMessage response) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                response.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
