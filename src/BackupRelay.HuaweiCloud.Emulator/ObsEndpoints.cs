using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// OBS pre-signed URLs, path style: <c>{base}/{bucket}/{key}?AccessKeyId=&amp;Expires=&amp;Signature=</c>,
/// signed like OBS query authentication: Base64(HMAC-SHA1(SK, "GET\n\n\n{Expires}\n/{bucket}/{key}")).
/// </summary>
internal static class ObsLinks
{
    public const string AccessKeyId = "EMULATOROBSKEY000001";

    // One key per process: links from a previous emulator run are rejected as tampered, like links
    // signed by a rotated key.
    private static readonly byte[] SecretKey = RandomNumberGenerator.GetBytes(32);

    public static string Key(string graphId, string backupId, string fileName) => $"{graphId}/{backupId}/{fileName}";

    public static string Create(string baseUrl, string bucket, string key, DateTimeOffset expires)
    {
        var expiresAt = expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return $"{baseUrl.TrimEnd('/')}/{bucket}/{key}?AccessKeyId={AccessKeyId}&Expires={expiresAt}&Signature={Uri.EscapeDataString(Sign(bucket, key, expiresAt))}";
    }

    public static string Sign(string bucket, string key, string expires) =>
        Convert.ToBase64String(HMACSHA1.HashData(SecretKey, Encoding.UTF8.GetBytes($"GET\n\n\n{expires}\n/{bucket}/{key}")));
}

internal static class ObsEndpoints
{
    private const int ChunkSize = 64 * 1024;

    public static void MapObs(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/obs/{bucket}/{**key}", ["GET", "HEAD"], DownloadAsync);
        app.MapObsWrites();
    }

    private static async Task DownloadAsync(HttpContext context, EmulatorState state, string bucket, string key,
        string? AccessKeyId, string? Expires, string? Signature)
    {
        if (ObsWriteEndpoints.IsSigned(context))
        {
            // Not a pre-signed link: an S3 API call signed with Signature V4 (objects written through the API).
            await ObsWriteEndpoints.HandleAsync(context, state, bucket, key);
            return;
        }

        var faults = Faults.Of(context);
        if (AccessKeyId is null || Expires is null || Signature is null)
        {
            await Responses.Obs(context, 403, "AccessDenied", "Anonymous access is not allowed: the request is not signed.").ExecuteAsync(context);
            return;
        }

        if (AccessKeyId != ObsLinks.AccessKeyId)
        {
            await Responses.Obs(context, 403, "InvalidAccessKeyId", "The access key Id you provided does not exist in our records.").ExecuteAsync(context);
            return;
        }

        if (!BackupRelay.HuaweiCloud.Auth.SdkHmacSha256.SignaturesEqual(ObsLinks.Sign(bucket, key, Expires), Signature))
        {
            await Responses.Obs(context, 403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.").ExecuteAsync(context);
            return;
        }

        if (!long.TryParse(Expires, NumberStyles.None, CultureInfo.InvariantCulture, out var expiresAt)
            || expiresAt < state.Now.ToUnixTimeSeconds()
            || faults.Any(f => f.Kind == "expireLink"))
        {
            await Responses.Obs(context, 403, "AccessDenied", "Request has expired").ExecuteAsync(context);
            return;
        }

        BackupFile? file;
        string backupId;
        lock (state.Sync)
        {
            var parts = key.Split('/');
            backupId = parts.Length == 3 ? parts[1] : "";
            var backup = bucket == state.Settings.Bucket && parts.Length == 3
                ? state.Backups.FirstOrDefault(b => b.GraphId == parts[0] && b.Id == parts[1])
                : null;
            file = backup?.Files.FirstOrDefault(f => f.Name == parts[2]);
        }

        if (file is null)
        {
            await Responses.Obs(context, 404, "NoSuchKey", "The specified key does not exist.").ExecuteAsync(context);
            return;
        }

        // A WAN-shaped source: time to first byte, then at most the per-connection rate.
        var (ttfb, rate) = (state.Settings.ObsTimeToFirstByteMs, state.Settings.ObsBytesPerSecondPerConnection);
        if (ttfb > 0)
        {
            await Task.Delay(ttfb, context.RequestAborted);
        }

        var (start, end, partial) = faults.Any(f => f.Kind == "ignoreRange")
            ? (0L, file.Size - 1, false)
            : ParseRange(context.Request.Headers.Range.ToString(), file.Size);
        if (start > end && partial)
        {
            context.Response.Headers.ContentRange = $"bytes */{file.Size}";
            await Responses.Obs(context, 416, "InvalidRange", "The requested range cannot be satisfied.").ExecuteAsync(context);
            return;
        }

        var response = context.Response;
        var length = Math.Max(0, end - start + 1);
        response.StatusCode = partial ? 206 : 200;
        response.ContentType = "application/octet-stream";
        response.ContentLength = length;
        response.Headers.AcceptRanges = "bytes";
        response.Headers.ETag = ETag(state, backupId, file, key);
        if (state.Settings.ServerSideEncryption is { Length: > 0 } sse)
        {
            response.Headers["x-obs-server-side-encryption"] = sse;
        }
        if (partial)
        {
            response.Headers.ContentRange = $"bytes {start}-{end}/{file.Size}";
        }

        if (HttpMethods.IsHead(context.Request.Method) || length == 0)
        {
            return;
        }

        var seed = BackupContent.Seed(backupId, file.Name);
        var drop = faults.FirstOrDefault(f => f.Kind == "drop");
        var corrupt = faults.FirstOrDefault(f => f.Kind == "corrupt");
        var limit = drop is null ? length : Math.Min(length, drop.AfterBytes);
        // A shaped connection writes about every 10 ms (not every 64 KiB): each write is a timer wake-up of the emulator's,
        // and at tens of MB/s per connection over 16 connections those would take the CPU the copy being measured needs.
        var chunkSize = rate > 0 ? (int)Math.Clamp(rate / 100, ChunkSize, 1 << 20) : ChunkSize;
        var buffer = ArrayPool<byte>.Shared.Rent(chunkSize);
        var pace = new ConnectionRate(rate);
        try
        {
            for (long sent = 0; sent < limit;)
            {
                await pace.WaitAsync(sent, context.RequestAborted);

                var count = (int)Math.Min(chunkSize, limit - sent);
                var offset = start + sent;
                BackupContent.Fill(seed, offset, buffer.AsSpan(0, count));
                if (corrupt is not null && corrupt.Offset >= offset && corrupt.Offset < offset + count)
                {
                    buffer[corrupt.Offset - offset] ^= 0xFF;
                }

                await response.Body.WriteAsync(buffer.AsMemory(0, count), context.RequestAborted);
                sent += count;
                context.Items[Faults.BodyBytesItem] = sent;
            }

            if (drop is not null)
            {
                // Let the bytes reach the socket before the reset, or the reader loses them.
                await response.Body.FlushAsync(context.RequestAborted);
                await Task.Delay(100, context.RequestAborted);
                context.Abort();
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The reader went away; nothing to answer.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// <c>bytes=a-b</c>, <c>bytes=a-</c> or <c>bytes=-n</c>. Like OBS, a malformed range is ignored
    /// (whole object, 200); a start beyond the end is unsatisfiable (start &gt; end, partial).
    /// </summary>
    internal static (long Start, long End, bool Partial) ParseRange(string header, long size)
    {
        var whole = (0L, size - 1, false);
        if (!header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) || header.Contains(','))
        {
            return whole;
        }

        var spec = header[6..].Trim();
        var dash = spec.IndexOf('-');
        if (dash < 0)
        {
            return whole;
        }

        var first = spec[..dash];
        var last = spec[(dash + 1)..];
        if (first.Length == 0)
        {
            return long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var suffix) && suffix > 0
                ? (Math.Max(0, size - suffix), size - 1, true)
                : whole;
        }

        if (!long.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var start))
        {
            return whole;
        }

        var end = size - 1;
        if (last.Length > 0)
        {
            if (!long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out end) || end < start)
            {
                return whole;
            }

            end = Math.Min(end, size - 1);
        }

        return start >= size ? (1L, 0L, true) : (start, end, true);
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, long), string> Md5s = new();

    /// <summary>The object's MD5 for a simple upload; for a large file the multipart ETag of its parts (or an opaque one, when so set).</summary>
    private static string ETag(EmulatorState state, string backupId, BackupFile file, string key)
    {
        if (state.Settings.ServerSideEncryption is { Length: > 0 })
        {
            // Encrypted at rest: an ETag of an MD5's shape that is not the MD5 of the bytes served.
            return $"\"{Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes("sse:" + key + file.Size)))}\"";
        }

        if (file.Size > state.Settings.SimpleUploadMaxBytes)
        {
            var partSize = state.Settings.MultipartPartSizeBytes;
            var parts = Math.Max(1, (file.Size + partSize - 1) / partSize);
            return state.Settings.MultipartEtagsFromContent
                ? $"\"{MultipartMd5(backupId, file, partSize)}-{parts}\""
                : $"\"{Convert.ToBase64String(MD5.HashData(Encoding.UTF8.GetBytes(key + file.Size))).TrimEnd('=')}-{parts}\"";
        }

        return $"\"{ContentMd5(backupId, file)}\"";
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, long, long), string> MultipartMd5s = new();

    /// <summary>MD5 of the concatenated binary MD5s of the file's parts (hex), computed once.</summary>
    internal static string MultipartMd5(string backupId, BackupFile file, long partSize) =>
        MultipartMd5s.GetOrAdd((backupId, file.Name, file.Size, partSize), k =>
        {
            var seed = BackupContent.Seed(k.Item1, k.Item2);
            using var outer = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
            var buffer = new byte[(int)Math.Min(k.Item4, 1 << 20)];
            for (long start = 0; start < k.Item3; start += k.Item4)
            {
                using var part = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
                for (var at = start; at < Math.Min(start + k.Item4, k.Item3); at += buffer.Length)
                {
                    var length = (int)Math.Min(buffer.Length, Math.Min(start + k.Item4, k.Item3) - at);
                    BackupContent.Fill(seed, at, buffer.AsSpan(0, length));
                    part.AppendData(buffer, 0, length);
                }

                outer.AppendData(part.GetHashAndReset());
            }

            return Convert.ToHexStringLower(outer.GetHashAndReset());
        });

    /// <summary>The MD5 of a backup file's bytes (hex), computed once.</summary>
    internal static string ContentMd5(string backupId, BackupFile file) =>
        Md5s.GetOrAdd((backupId, file.Name, file.Size), k => Convert.ToHexStringLower(BackupContent.Hashes(BackupContent.Seed(k.Item1, k.Item2), k.Item3).Md5));
}
