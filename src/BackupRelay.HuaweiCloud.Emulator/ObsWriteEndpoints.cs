using System.Buffers;
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

        var drop = faults.FirstOrDefault(f => f.Kind == "drop");
        if (drop is not null)
        {
            // A connection lost while the body arrives: read some of it, then reset.
            var chunk = new byte[16 * 1024];
            for (var received = 0L; received < drop.AfterBytes && await request.Body.ReadAsync(chunk, context.RequestAborted) is > 0 and var read;)
            {
                received += read;
            }

            context.Abort();
            return;
        }

        var body = await ReceiveAsync(context, state, faults.FirstOrDefault(f => f.Kind == "corrupt"));
        var answer = Answer(context, state, bucket, key, operation, partNumber, body, faults);
        if (answer.Status >= 300)
        {
            ObsStore.Discard(body.Bytes);
        }

        state.Obs.RecordWrite(new ObsWrite(operation, bucket, key, partNumber, body.Bytes.Length, request.Headers.ContainsKey("Content-MD5"),
            request.Headers["x-amz-content-sha256"].ToString(), request.Headers.ContentEncoding.ToString() is { Length: > 0 } e ? e : null,
            checksumHeaders, answer.Status));
        if (state.Settings.ObsWriteTimeToFirstByteMs is > 0 and var wait && body.Bytes.Length > 0)
        {
            await Task.Delay(wait, context.RequestAborted);
        }

        await answer.Result.ExecuteAsync(context);
    }

    /// <summary>A body as received (after any injected damage), with the MD5 of those bytes and the SHA-256 of the bytes sent.</summary>
    private sealed record Received(ObsBytes Bytes, string Md5Hex, string Sha256Hex);

    /// <summary>
    /// Reads the body chunk by chunk — into memory when small, else into a file of the store's data directory — hashing as
    /// the bytes pass, at most <see cref="EmulatorSettings.ObsWriteBytesPerSecondPerConnection"/> when the link is shaped.
    /// </summary>
    private static async Task<Received> ReceiveAsync(HttpContext context, EmulatorState state, FaultSpec? corrupt)
    {
        var request = context.Request;
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var inMemory = request.ContentLength is { } declared && declared <= ObsStore.InMemoryMaxBytes
            || request.Method is "GET" or "HEAD" or "DELETE";
        var path = inMemory ? null : state.Obs.NewBodyFile();
        using var memory = inMemory ? new MemoryStream() : null;
        var buffer = ArrayPool<byte>.Shared.Rent(ObsBytes.ChunkSize);
        var pace = new ConnectionRate(state.Settings.ObsWriteBytesPerSecondPerConnection);
        var total = 0L;
        try
        {
            await using var file = path is null ? null : new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1, FileOptions.Asynchronous);
            while (true)
            {
                await pace.WaitAsync(total, context.RequestAborted);
                var want = pace.BytesPerSecond > 0 ? (int)Math.Clamp(pace.BytesPerSecond / 10, 1, ObsBytes.ChunkSize) : ObsBytes.ChunkSize;
                var read = await request.Body.ReadAsync(buffer.AsMemory(0, want), context.RequestAborted);
                if (read == 0)
                {
                    break;
                }

                var chunk = buffer.AsMemory(0, read);
                sha256.AppendData(chunk.Span);
                if (corrupt is not null && corrupt.Offset >= total && corrupt.Offset < total + read)
                {
                    // Damage in transit, past the signature: the bytes received are not the bytes sent.
                    chunk.Span[(int)(corrupt.Offset - total)] ^= 0xFF;
                }

                md5.AppendData(chunk.Span);
                if (file is not null)
                {
                    await file.WriteAsync(chunk, context.RequestAborted);
                }
                else
                {
                    memory!.Write(chunk.Span);
                }

                total += read;
            }
        }
        catch
        {
            if (path is not null)
            {
                File.Delete(path);
            }

            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        var bytes = path is null ? ObsBytes.Of(memory!.ToArray()) : new FileBytes(path, total);
        return new Received(bytes, Convert.ToHexStringLower(md5.GetHashAndReset()), Convert.ToHexStringLower(sha256.GetHashAndReset()));
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
        int? partNumber, Received body, IReadOnlyList<FaultSpec> faults)
    {
        (int, IResult) Error(int status, string code, string message) => (status, Responses.Obs(context, status, code, message));

        if (ObsSignatureV4.Verify(context, state, body.Sha256Hex) is { } denied)
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

        var md5 = body.Md5Hex;
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
                    if (key.EndsWith('/') && body.Bytes.Length > 0)
                    {
                        return Error(400, "InvalidArgument", "A folder object must be empty.");
                    }

                    ObsStore.Discard(store.Objects.GetValueOrDefault((bucket, key))?.Content);
                    store.Objects[(bucket, key)] = new StoredObject(body.Bytes, md5, $"\"{md5}\"", Metadata(request), now);
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

                    ObsStore.Discard(upload!.Parts.GetValueOrDefault(partNumber.Value).Data);
                    upload.Parts[partNumber.Value] = (body.Bytes, md5, now);
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
                    return Complete(context, store, upload!, body.Bytes.ReadAll(), now);

                case "AbortMultipartUpload":
                    store.Uploads.Remove(upload!.Id);
                    foreach (var part in upload.Parts.Values)
                    {
                        ObsStore.Discard(part.Data);
                    }

                    return (204, TypedResults.NoContent());

                case "DeleteObject":
                    if (store.Objects.Remove((bucket, key), out var removed))
                    {
                        ObsStore.Discard(removed.Content);
                    }

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

                    context.Response.Headers.AcceptRanges = "bytes";
                    if (operation == "HeadObject")
                    {
                        context.Response.ContentLength = stored.Length;
                        return (200, TypedResults.Ok());
                    }

                    var (start, end, partial) = ObsEndpoints.ParseRange(request.Headers.Range.ToString(), stored.Length);
                    if (start > end && partial)
                    {
                        context.Response.Headers.ContentRange = $"bytes */{stored.Length}";
                        return Error(416, "InvalidRange", "The requested range cannot be satisfied.");
                    }

                    if (partial)
                    {
                        context.Response.Headers.ContentRange = $"bytes {start}-{end}/{stored.Length}";
                    }

                    // Damage at rest or on the way back (a corrupt fault): the bytes served are not the bytes stored.
                    var damaged = faults.FirstOrDefault(f => f.Kind == "corrupt")?.Offset;
                    return (partial ? 206 : 200, new ContentResult(stored.Content, start, Math.Max(0, end - start + 1), partial ? 206 : 200, damaged));

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
                            new XElement(X("Size"), o.Value.Length),
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

        // The object is its parts in order, not a copy of them; OBS answers the multipart ETag (the MD5 of the part MD5s,
        // and their count), and the object's own MD5 (what GES's import checks) is read from the parts off the lock.
        var md5s = listed.SelectMany(p => Convert.FromHexString(upload.Parts[p.Number].Md5Hex)).ToArray();
        var etag = $"\"{Convert.ToHexStringLower(MD5.HashData(md5s))}-{listed.Count}\"";
        var completed = new StoredObject(new JoinedBytes([.. listed.Select(p => upload.Parts[p.Number].Data)]), null, etag, upload.Metadata, now);
        completed.StartHashing();
        ObsStore.Discard(store.Objects.GetValueOrDefault((upload.Bucket, upload.Key))?.Content);
        store.Objects[(upload.Bucket, upload.Key)] = completed;
        foreach (var (number, part) in upload.Parts.Where(p => !listed.Any(l => l.Number == p.Key)))
        {
            ObsStore.Discard(part.Data); // uploaded but not listed: not part of the object
        }

        store.Uploads.Remove(upload.Id);
        return (200, Xml("CompleteMultipartUploadResult",
            new XElement(X("Location"), $"{context.Request.Scheme}://{context.Request.Host}/obs/{upload.Bucket}/{upload.Key}"),
            new XElement(X("Bucket"), upload.Bucket), new XElement(X("Key"), upload.Key), new XElement(X("ETag"), etag)));
    }

    /// <summary>Bytes <c>[start, start + length)</c> of an object, streamed from where they are; one byte flipped when damaged.</summary>
    private sealed class ContentResult(ObsBytes content, long start, long length, int status, long? damagedAt) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            response.StatusCode = status;
            response.ContentType = "application/octet-stream";
            response.ContentLength = length;
            var aborted = httpContext.RequestAborted;
            try
            {
                if (damagedAt is { } at && at >= start && at < start + length)
                {
                    await content.CopyToAsync(response.Body, start, at - start, aborted);
                    using var one = new MemoryStream(1);
                    await content.CopyToAsync(one, at, 1, aborted);
                    await response.Body.WriteAsync(new[] { (byte)(one.ToArray()[0] ^ 0xFF) }, aborted);
                    await content.CopyToAsync(response.Body, at + 1, start + length - at - 1, aborted);
                }
                else
                {
                    await content.CopyToAsync(response.Body, start, length, aborted);
                }
            }
            catch (OperationCanceledException) when (aborted.IsCancellationRequested)
            {
                // The reader went away; nothing to answer.
            }
        }
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
