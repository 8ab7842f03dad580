using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.Http.Features;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// OBS through its S3-compatible API, path style under <c>/obs</c>, signed with Signature V4:
/// PutObject, multipart upload (initiate, upload part, list parts, complete, abort), HeadObject,
/// GetObject, DeleteObject and ListObjectsV2, with OBS's error codes. Content-MD5 is checked when
/// sent (400 <c>BadDigest</c>); <c>aws-chunked</c> bodies and flexible-checksum trailers are refused,
/// as S3-compatible stores that do not implement them refuse them.
/// </summary>
internal static class ObsWriteEndpoints
{
    private const string Namespace = "http://obs.myhwclouds.com/doc/2015-06-30/";

    public static void MapObsWrites(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/obs/{bucket}/{**key}", ["PUT", "POST", "DELETE"], HandleAsync);
        app.MapGet("/obs/{bucket}", HandleAsync);
    }

    /// <summary>True for a request signed with Signature V4 (the download endpoint hands those here).</summary>
    public static bool IsSigned(HttpContext context) =>
        context.Request.Headers.Authorization.ToString().StartsWith(ObsSignatureV4.Algorithm, StringComparison.Ordinal);

    public static async Task HandleAsync(HttpContext context, EmulatorState state, string bucket, string? key)
    {
        key ??= "";
        var request = context.Request;
        var faults = Faults.Of(context);
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = 5L * 1024 * 1024 * 1024;
        }

        var operation = Operation(request, key);
        var checksumHeaders = request.Headers.Keys.Where(h => h.StartsWith("x-amz-checksum-", StringComparison.OrdinalIgnoreCase)
            || h.Equals("x-amz-trailer", StringComparison.OrdinalIgnoreCase) || h.Equals("x-amz-sdk-checksum-algorithm", StringComparison.OrdinalIgnoreCase)).ToList();
        int? partNumber = int.TryParse(request.Query["partNumber"], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

        byte[] body;
        var drop = faults.FirstOrDefault(f => f.Kind == "drop");
        using (var buffer = new MemoryStream())
        {
            if (drop is not null)
            {
                // A connection lost while the body arrives: read some of it, then reset.
                var chunk = new byte[16 * 1024];
                while (buffer.Length < drop.AfterBytes && await request.Body.ReadAsync(chunk, context.RequestAborted) is > 0 and var read)
                {
                    buffer.Write(chunk, 0, read);
                }

                context.Abort();
                return;
            }

            await request.Body.CopyToAsync(buffer, context.RequestAborted);
            body = buffer.ToArray();
        }

        var answer = Answer(context, state, bucket, key, operation, partNumber, body, faults);
        state.Obs.RecordWrite(new ObsWrite(operation, bucket, key, partNumber, body.Length, request.Headers.ContainsKey("Content-MD5"),
            request.Headers["x-amz-content-sha256"].ToString(), request.Headers.ContentEncoding.ToString() is { Length: > 0 } e ? e : null,
            checksumHeaders, answer.Status));
        await answer.Result.ExecuteAsync(context);
    }

    private static string Operation(HttpRequest request, string key)
    {
        var q = request.Query;
        return (request.Method, key.Length == 0) switch
        {
            ("GET", true) => "ListObjects",
            ("PUT", _) when q.ContainsKey("uploadId") => "UploadPart",
            ("PUT", _) => "PutObject",
            ("POST", _) when q.ContainsKey("uploads") => "InitiateMultipartUpload",
            ("POST", _) when q.ContainsKey("uploadId") => "CompleteMultipartUpload",
            ("DELETE", _) when q.ContainsKey("uploadId") => "AbortMultipartUpload",
            ("DELETE", _) => "DeleteObject",
            ("GET", _) when q.ContainsKey("uploadId") => "ListParts",
            ("GET", _) => "GetObject",
            ("HEAD", _) => "HeadObject",
            _ => "Unsupported",
        };
    }

    private static (int Status, IResult Result) Answer(HttpContext context, EmulatorState state, string bucket, string key, string operation,
        int? partNumber, byte[] body, IReadOnlyList<FaultSpec> faults)
    {
        (int, IResult) Error(int status, string code, string message) => (status, Responses.Obs(context, status, code, message));

        if (ObsSignatureV4.Verify(context, state, body) is { } denied)
        {
            return Error(denied.Status, denied.Code, denied.Message);
        }

        var request = context.Request;
        if (request.Headers.ContentEncoding.ToString().Contains("aws-chunked", StringComparison.OrdinalIgnoreCase)
            || request.Headers["x-amz-content-sha256"].ToString().StartsWith("STREAMING-", StringComparison.Ordinal))
        {
            return Error(400, "NotImplemented", "aws-chunked (streaming signed) bodies are not supported; send the payload as is.");
        }

        if (request.Headers.ContainsKey("x-amz-trailer"))
        {
            return Error(400, "InvalidArgument", "Trailing checksums (x-amz-trailer) are not supported.");
        }

        if (operation == "Unsupported")
        {
            return Error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
        }

        if (faults.FirstOrDefault(f => f.Kind == "corrupt") is { } corrupt && corrupt.Offset < body.Length)
        {
            // Damage in transit: the bytes received are not the bytes sent.
            body[corrupt.Offset] ^= 0xFF;
        }

        var md5 = ObsStore.Md5Hex(body);
        if (request.Headers["Content-MD5"].ToString() is { Length: > 0 } declared
            && !string.Equals(declared, Convert.ToBase64String(Convert.FromHexString(md5)), StringComparison.Ordinal))
        {
            return Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
        }

        lock (state.Sync)
        {
            if (!state.Settings.Buckets.Contains(bucket) && bucket != state.Settings.Bucket)
            {
                return Error(404, "NoSuchBucket", "The specified bucket does not exist.");
            }

            var store = state.Obs;
            var now = state.Now;
            var uploadId = request.Query["uploadId"].ToString();
            MultipartUpload? upload = null;
            if (operation is "UploadPart" or "CompleteMultipartUpload" or "AbortMultipartUpload" or "ListParts"
                && (!store.Uploads.TryGetValue(uploadId, out upload) || upload.Bucket != bucket || upload.Key != key))
            {
                return Error(404, "NoSuchUpload", "The specified multipart upload does not exist.");
            }

            switch (operation)
            {
                case "PutObject":
                    if (key.EndsWith('/') && body.Length > 0)
                    {
                        return Error(400, "InvalidArgument", "A folder object must be empty.");
                    }

                    store.Objects[(bucket, key)] = new StoredObject(body, md5, $"\"{md5}\"", Metadata(request), now);
                    context.Response.Headers.ETag = $"\"{md5}\"";
                    return (200, TypedResults.Ok());

                case "InitiateMultipartUpload":
                    var created = new MultipartUpload { Id = EmulatorState.NewHexId(), Bucket = bucket, Key = key, Metadata = Metadata(request), Initiated = now };
                    store.Uploads[created.Id] = created;
                    return (200, Xml("InitiateMultipartUploadResult", new XElement(X("Bucket"), bucket), new XElement(X("Key"), key),
                        new XElement(X("UploadId"), created.Id)));

                case "UploadPart":
                    if (partNumber is not (>= 1 and <= ObsStore.MaxPartNumber))
                    {
                        return Error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.");
                    }

                    upload!.Parts[partNumber.Value] = (body, md5, now);
                    context.Response.Headers.ETag = $"\"{md5}\"";
                    return (200, TypedResults.Ok());

                case "ListParts":
                    var marker = int.TryParse(request.Query["part-number-marker"], NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0;
                    var max = int.TryParse(request.Query["max-parts"], NumberStyles.None, CultureInfo.InvariantCulture, out var mp) ? Math.Clamp(mp, 1, 1000) : 1000;
                    var page = upload!.Parts.Where(p => p.Key > marker).Take(max + 1).ToList();
                    var truncated = page.Count > max;
                    page = page.Take(max).ToList();
                    return (200, Xml("ListPartsResult",
                        new XElement(X("Bucket"), bucket), new XElement(X("Key"), key), new XElement(X("UploadId"), upload.Id),
                        new XElement(X("PartNumberMarker"), marker),
                        new XElement(X("NextPartNumberMarker"), page.Count > 0 ? page[^1].Key : marker),
                        new XElement(X("MaxParts"), max), new XElement(X("IsTruncated"), truncated ? "true" : "false"),
                        page.Select(p => new XElement(X("Part"),
                            new XElement(X("PartNumber"), p.Key),
                            new XElement(X("LastModified"), p.Value.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)),
                            new XElement(X("ETag"), $"\"{p.Value.Md5Hex}\""),
                            new XElement(X("Size"), p.Value.Data.Length)))));

                case "CompleteMultipartUpload":
                    return Complete(context, store, upload!, body, now);

                case "AbortMultipartUpload":
                    store.Uploads.Remove(upload!.Id);
                    return (204, TypedResults.NoContent());

                case "DeleteObject":
                    store.Objects.Remove((bucket, key));
                    return (204, TypedResults.NoContent());

                case "HeadObject" or "GetObject":
                    if (!store.Objects.TryGetValue((bucket, key), out var stored))
                    {
                        return operation == "HeadObject" ? (404, TypedResults.NotFound()) : Error(404, "NoSuchKey", "The specified key does not exist.");
                    }

                    context.Response.Headers.ETag = stored.ETag;
                    context.Response.Headers.LastModified = stored.LastModified.ToString("R", CultureInfo.InvariantCulture);
                    foreach (var (name, value) in stored.Metadata)
                    {
                        context.Response.Headers["x-amz-meta-" + name] = value;
                    }

                    if (operation == "HeadObject")
                    {
                        context.Response.ContentLength = stored.Data.Length;
                        return (200, TypedResults.Ok());
                    }

                    if (faults.FirstOrDefault(f => f.Kind == "corrupt") is { } damaged && damaged.Offset < stored.Data.Length)
                    {
                        // Damage at rest or on the way back: the bytes served are not the bytes stored.
                        var served = (byte[])stored.Data.Clone();
                        served[damaged.Offset] ^= 0xFF;
                        return (200, TypedResults.Bytes(served, "application/octet-stream"));
                    }

                    return (200, TypedResults.Bytes(stored.Data, "application/octet-stream"));

                default: // ListObjects (V2)
                    var prefix = request.Query["prefix"].ToString();
                    var listed = store.List(bucket, prefix);
                    return (200, Xml("ListBucketResult",
                        new XElement(X("Name"), bucket), new XElement(X("Prefix"), prefix), new XElement(X("KeyCount"), listed.Count),
                        new XElement(X("MaxKeys"), 1000), new XElement(X("IsTruncated"), "false"),
                        listed.Select(o => new XElement(X("Contents"),
                            new XElement(X("Key"), o.Key),
                            new XElement(X("LastModified"), o.Value.LastModified.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)),
                            new XElement(X("ETag"), o.Value.ETag),
                            new XElement(X("Size"), o.Value.Data.Length),
                            new XElement(X("StorageClass"), "STANDARD")))));
            }
        }
    }

    private static (int, IResult) Complete(HttpContext context, ObsStore store, MultipartUpload upload, byte[] body, DateTimeOffset now)
    {
        (int, IResult) Error(int status, string code, string message) => (status, Responses.Obs(context, status, code, message));
        List<(int Number, string ETag)> listed;
        try
        {
            var document = XDocument.Parse(Encoding.UTF8.GetString(body));
            listed = [.. document.Root!.Elements().Where(e => e.Name.LocalName == "Part").Select(p => (
                int.Parse(p.Elements().Single(e => e.Name.LocalName == "PartNumber").Value, CultureInfo.InvariantCulture),
                p.Elements().Single(e => e.Name.LocalName == "ETag").Value.Trim('"')))];
        }
        catch (Exception ex) when (ex is System.Xml.XmlException or InvalidOperationException or FormatException or OverflowException or NullReferenceException)
        {
            return Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.");
        }

        if (listed.Count == 0)
        {
            return Error(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.");
        }

        // As S3 and OBS check them: the order of the list first, then each part, then the sizes.
        for (var i = 1; i < listed.Count; i++)
        {
            if (listed[i].Number <= listed[i - 1].Number)
            {
                return Error(400, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.");
            }
        }

        for (var i = 0; i < listed.Count; i++)
        {
            if (!upload.Parts.TryGetValue(listed[i].Number, out var part) || !string.Equals(part.Md5Hex, listed[i].ETag, StringComparison.OrdinalIgnoreCase))
            {
                return Error(400, "InvalidPart", "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.");
            }

            if (i < listed.Count - 1 && part.Data.Length < ObsStore.MinPartSize)
            {
                return Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.");
            }
        }

        using var data = new MemoryStream();
        using var md5s = new MemoryStream();
        foreach (var (number, _) in listed)
        {
            var part = upload.Parts[number];
            data.Write(part.Data);
            md5s.Write(Convert.FromHexString(part.Md5Hex));
        }

        var bytes = data.ToArray();
        var etag = $"\"{Convert.ToHexStringLower(MD5.HashData(md5s.ToArray()))}-{listed.Count}\"";
        store.Objects[(upload.Bucket, upload.Key)] = new StoredObject(bytes, ObsStore.Md5Hex(bytes), etag, upload.Metadata, now);
        store.Uploads.Remove(upload.Id);
        return (200, Xml("CompleteMultipartUploadResult",
            new XElement(X("Location"), $"{context.Request.Scheme}://{context.Request.Host}/obs/{upload.Bucket}/{upload.Key}"),
            new XElement(X("Bucket"), upload.Bucket), new XElement(X("Key"), upload.Key), new XElement(X("ETag"), etag)));
    }

    private static Dictionary<string, string> Metadata(HttpRequest request) => request.Headers
        .Where(h => h.Key.StartsWith("x-amz-meta-", StringComparison.OrdinalIgnoreCase))
        .ToDictionary(h => h.Key["x-amz-meta-".Length..].ToLowerInvariant(), h => h.Value.ToString(), StringComparer.Ordinal);

    private static XName X(string name) => XName.Get(name, Namespace);

    private static IResult Xml(string root, params object[] content)
    {
        var document = new XDocument(new XDeclaration("1.0", "UTF-8", null), new XElement(X(root), content));
        return TypedResults.Text(document.Declaration + "\n" + document.Root, "application/xml");
    }
}
