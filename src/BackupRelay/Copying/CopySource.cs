using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Copying;

/// <summary>
/// The source of one copy: GETs and ranged GETs of the download link, the link refreshed when it expires or
/// fails (one refresh at a time, every range switching to the new link), retried a bounded number of times, and
/// the size and checksums the source declares (a plain MD5 ETag or Content-MD5, a multipart ETag), which must not
/// change during the copy.
/// </summary>
internal sealed partial class CopySource(HttpClient download, CopyState state, CopyOptions options, ILogger logger)
{
    private readonly SemaphoreSlim _refresh = new(1);

    public CopyOptions Options => options;

    /// <summary>The link every request uses now.</summary>
    public Uri Link => state.Link;

    /// <summary>Opens <c>bytes=offset-(offset+length-1)</c>; the answer must be that range of a file of the known size.</summary>
    public async Task<SourceStream> OpenRangeAsync(Uri link, long offset, long length, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, link);
        request.Headers.Range = new RangeHeaderValue(offset, offset + length - 1);
        var response = await SendAsync(request, cancellationToken);

        try
        {
            var status = (int)response.StatusCode;
            ThrowIfFailed(status);

            var range = response.Content.Headers.ContentRange;
            if (response.StatusCode != HttpStatusCode.PartialContent || range is not { From: { } from, To: { } to, Length: { } total })
            {
                throw new CopyFailedException($"The source stopped honouring Range requests (HTTP {status} for the range at {offset}); nothing was staged from it.");
            }

            if (from != offset || to != offset + length - 1 || total != state.Size)
            {
                throw new CopyFailedException($"The source answered the range at {offset} with Content-Range '{range}'; the file has {state.Size} bytes.");
            }

            _ = SameSourceMd5(response);
            _ = SameMultipartEtag(response);
            return new SourceStream(response, await response.Content.ReadAsStreamAsync(cancellationToken));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>Replaces <paramref name="failed"/> with a fresh link, unless another request already did.</summary>
    public async Task RefreshAsync(Uri failed, CancellationToken cancellationToken)
    {
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (state.Link == failed)
            {
                state.Link = await state.Request.RefreshLinkAsync(cancellationToken);
            }
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>Replaces the link with a fresh one (one stream, or a destination fetching from it: whatever failed was the current link).</summary>
    public Task RefreshAsync(CancellationToken cancellationToken) => RefreshAsync(state.Link, cancellationToken);

    /// <summary>Opens the source at the current offset, refreshing the link after failures, a bounded number of times.</summary>
    public async Task<SourceStream?> OpenWithRetriesAsync(CancellationToken cancellationToken, long? boundedLength = null)
    {
        while (true)
        {
            try
            {
                return await OpenAsync(cancellationToken, boundedLength);
            }
            catch (SourceFailedException ex)
            {
                await RecoverAsync(ex, cancellationToken);
            }
        }
    }

    /// <summary>The one stream failed at the current offset: counted as one more failure in a row there (see <see cref="FailedAtAsync"/>).</summary>
    private Task RecoverAsync(Exception failure, CancellationToken cancellationToken) =>
        FailedAtAsync(state.Offset, ++state.ConsecutiveSourceFailures, failure, state.Link, cancellationToken);

    /// <summary>Fills <paramref name="block"/> from the source, reopening it at the block's start after a drop.</summary>
    public async Task<SourceStream?> ReadBlockAsync(SourceStream? source, Memory<byte> block, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                if (source is null)
                {
                    throw new SourceFailedException("The source stream is not open.");
                }

                var filled = 0;
                while (filled < block.Length)
                {
                    var read = await source.Stream.ReadAsync(block[filled..], cancellationToken);
                    if (read == 0)
                    {
                        throw new SourceFailedException($"The source ended {state.Offset + filled} bytes in; it declared {state.Size}.");
                    }

                    filled += read;
                }

                state.BytesFromSource += filled;
                state.ConsecutiveSourceFailures = 0;
                return source;
            }
            catch (Exception ex) when (IsRetriable(ex) && !cancellationToken.IsCancellationRequested)
            {
                source?.Dispose();
                source = null;
                await RecoverAsync(ex, cancellationToken);
                try
                {
                    source = await OpenAsync(cancellationToken);
                }
                catch (SourceFailedException)
                {
                    // Counted on the next turn of the loop.
                }
            }
        }
    }

    /// <summary>
    /// Fills <paramref name="block"/> with the bytes at <paramref name="offset"/>, from <paramref name="opened"/> (an answer
    /// already covering them) or its own <c>Range</c> request, retried alone after a drop, a short read or an error answer,
    /// at most <c>Copy__MaxSourceAttempts</c> times, a failed link refreshed once for every range.
    /// </summary>
    public async Task FetchBlockAsync(long offset, Memory<byte> block, SourceStream? opened, CancellationToken cancellationToken)
    {
        for (var failures = 0; ;)
        {
            var link = Link;
            var source = opened;
            opened = null;
            try
            {
                source ??= await OpenRangeAsync(link, offset, block.Length, cancellationToken);
                var read = await source.Stream.ReadAtLeastAsync(block, block.Length, throwOnEndOfStream: false, cancellationToken);
                if (read < block.Length)
                {
                    throw new SourceFailedException($"The range at {offset} ended after {read} of {block.Length} bytes.");
                }

                Interlocked.Add(ref state.BytesFromSource, read);
                return;
            }
            catch (Exception ex) when (IsRetriable(ex) && !cancellationToken.IsCancellationRequested)
            {
                await FailedAtAsync(offset, ++failures, ex, link, cancellationToken);
            }
            finally
            {
                source?.Dispose();
            }
        }
    }

    /// <summary>A failure worth another request: the source failed, the connection dropped, the request could not be sent.</summary>
    public static bool IsRetriable(Exception ex) => ex is SourceFailedException or IOException or HttpRequestException;

    /// <summary>
    /// Counts the <paramref name="failures"/>-th failure in a row of the request at <paramref name="offset"/> on
    /// <paramref name="link"/>: the copy fails past <c>Copy__MaxSourceAttempts</c>; otherwise the link is refreshed.
    /// </summary>
    public async Task FailedAtAsync(long offset, int failures, Exception failure, Uri link, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref state.SourceRestarts);
        if (failures >= options.MaxSourceAttempts)
        {
            throw new CopyFailedException($"The source failed {failures} times in a row at offset {offset}: {failure.Message}");
        }

        CopyLog.SourceRestart(logger, state.Request.DestinationPath, offset, failure.Message);
        await RefreshAsync(link, cancellationToken);
    }

    /// <summary>The MD5 of the whole source, read once more (a fresh link after a failure, a bounded number of times).</summary>
    public async Task<byte[]> SecondReadMd5Async(CancellationToken cancellationToken)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, Link);
                    using var response = await SendAsync(request, cancellationToken);
                    if (!response.IsSuccessStatusCode)
                    {
                        throw new SourceFailedException($"The source answered HTTP {(int)response.StatusCode} to the second read.");
                    }

                    using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.MD5);
                    await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
                    int read;
                    while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                    }

                    return hash.GetHashAndReset();
                }
                catch (Exception ex) when (IsRetriable(ex) && attempt < options.MaxSourceAttempts)
                {
                    await RefreshAsync(cancellationToken);
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <param name="boundedLength">Ask for this many bytes only (a probe); null: from the offset to the end.</param>
    private async Task<SourceStream?> OpenAsync(CancellationToken cancellationToken, long? boundedLength = null)
    {
        var offset = state.Offset;
        using var request = new HttpRequestMessage(HttpMethod.Get, state.Link);
        if (boundedLength is { } bounded)
        {
            request.Headers.Range = new RangeHeaderValue(offset, offset + bounded - 1);
        }
        else if (offset > 0)
        {
            request.Headers.Range = new RangeHeaderValue(offset, null);
        }

        var response = await SendAsync(request, cancellationToken);

        try
        {
            var status = (int)response.StatusCode;
            if (status == 416 && (state.Size == offset || (state.Size is null && offset == 0 && response.Content.Headers.ContentRange?.Length == 0)))
            {
                // Nothing left to read: the end of the file, or an empty file asked for its first block.
                state.SetSize(0, options);
                state.StreamEnd = -1;
                response.Dispose();
                return null;
            }

            ThrowIfFailed(status);

            long total;
            long end;
            if (offset > 0 || response.StatusCode == HttpStatusCode.PartialContent)
            {
                if (response.StatusCode != HttpStatusCode.PartialContent)
                {
                    throw new CopyFailedException($"The source ignored the Range request for offset {offset} (HTTP {status}); nothing was appended.");
                }

                var range = response.Content.Headers.ContentRange;
                if (range is not { From: { } from, To: { } to, Length: { } length } || from != offset)
                {
                    throw new CopyFailedException($"The source answered a Range request for offset {offset} with Content-Range '{range}'.");
                }

                total = length;
                end = to;
            }
            else if (response.StatusCode == HttpStatusCode.OK && response.Content.Headers.ContentLength is { } contentLength)
            {
                // The whole file: asked so (offset 0, no range), or a range ignored.
                state.RangeIgnored |= boundedLength is not null && boundedLength < contentLength;
                total = contentLength;
                end = contentLength - 1;
            }
            else
            {
                throw new CopyFailedException($"The source answered HTTP {status} without a usable length.");
            }

            if (state.Size is { } known && known != total)
            {
                throw new CopyFailedException($"The source now has {total} bytes; it had {known} when the copy started.");
            }

            state.SourceEncryption ??= ServerSideEncryption(response);
            state.SourceMd5Hex ??= SameSourceMd5(response);
            state.SourceMultipartEtag ??= SameMultipartEtag(response);
            state.SetSize(total, options);
            if (state.Offset != offset && state.Offset < total)
            {
                // Knowing the size moved the start (the staged blocks were of an unusable size): start again there.
                response.Dispose();
                return await OpenAsync(cancellationToken, state.RangeIgnored ? null : boundedLength);
            }

            state.StreamEnd = end;
            return new SourceStream(response, await response.Content.ReadAsStreamAsync(cancellationToken));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends a request to the link. The answer must come from the link's own host: a redirect (answered, or followed
    /// by a client that follows them) is a failed link — a fresh one is asked for — never a new source, whose
    /// checksum the copy would otherwise be "verified" against.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var asked = request.RequestUri!;
        HttpResponseMessage response;
        try
        {
            response = await download.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new SourceFailedException($"The source could not be reached ({ex.HttpRequestError}).");
        }

        var answered = response.RequestMessage?.RequestUri ?? asked;
        var status = (int)response.StatusCode;
        if (status is >= 300 and < 400 || Uri.Compare(asked, answered, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) != 0)
        {
            var to = response.Headers.Location is { IsAbsoluteUri: true } location ? location.Host : answered.Host;
            response.Dispose();
            throw new SourceFailedException($"The download link redirected (HTTP {status}) to {to}: a link is never followed off its host; asking for a fresh one.");
        }

        return response;
    }

    /// <summary>An answer worth asking again for (a fresh link, a later attempt): refused, throttled, failing, or not found.</summary>
    private static void ThrowIfFailed(int status)
    {
        if (status is 403 or 401 or 408 or 429 or >= 500)
        {
            throw new SourceFailedException(status == 403
                ? "The download link was refused (expired or revoked)."
                : $"The source answered HTTP {status}.");
        }

        if (status == 404)
        {
            throw new SourceFailedException("The source file was not found.");
        }
    }

    /// <summary>The MD5 this answer declares (null: none), which must be the one the copy started with.</summary>
    private string? SameSourceMd5(HttpResponseMessage response)
    {
        var md5 = SourceMd5(response);
        if (state.SourceMd5Hex is { } previous && md5 is not null && !string.Equals(previous, md5, StringComparison.OrdinalIgnoreCase))
        {
            throw new CopyFailedException("The source's MD5 changed during the copy.");
        }

        return md5;
    }

    /// <summary>The source's multipart ETag (null: none), which must be the one the copy started with.</summary>
    private string? SameMultipartEtag(HttpResponseMessage response)
    {
        var etag = ServerSideEncryption(response) is null ? response.Headers.ETag?.Tag?.Trim('"') : null;
        if (!MultipartEtagCheck.IsMultipart(etag))
        {
            return null;
        }

        if (state.SourceMultipartEtag is { } previous && !string.Equals(previous, etag, StringComparison.OrdinalIgnoreCase))
        {
            throw new CopyFailedException("The source's ETag changed during the copy.");
        }

        return etag;
    }

    /// <summary>
    /// The object's MD5 when the source declares one: Content-MD5, or an ETag that is a plain MD5 (not multipart "-N")
    /// of an object not encrypted at rest (an encrypted object's ETag, whatever its shape, is not the MD5 of its bytes).
    /// </summary>
    private static string? SourceMd5(HttpResponseMessage response)
    {
        if (response.StatusCode == HttpStatusCode.OK && response.Content.Headers.ContentMD5 is { Length: 16 } contentMd5)
        {
            return Convert.ToHexStringLower(contentMd5);
        }

        var etag = ServerSideEncryption(response) is null ? response.Headers.ETag?.Tag?.Trim('"') : null;
        return etag is not null && PlainMd5().IsMatch(etag) ? etag.ToLowerInvariant() : null;
    }

    /// <summary>
    /// How the object is encrypted at rest, when that makes its ETag something other than an MD5 of its bytes (null
    /// otherwise): OBS says so for every server-side encryption (<c>x-obs-server-side-encryption</c>, or a customer key);
    /// S3 for KMS and customer keys (its SSE-S3 ETag stays an MD5).
    /// </summary>
    internal static string? ServerSideEncryption(HttpResponseMessage response)
    {
        string? Header(string name) => response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
        if (Header("x-obs-server-side-encryption") is { Length: > 0 } obs)
        {
            return obs;
        }

        if (Header("x-obs-server-side-encryption-customer-algorithm") is { Length: > 0 } obsCustomer)
        {
            return $"customer key {obsCustomer}";
        }

        if (Header("x-amz-server-side-encryption-customer-algorithm") is { Length: > 0 } s3Customer)
        {
            return $"customer key {s3Customer}";
        }

        return Header("x-amz-server-side-encryption") is { } s3 && s3.StartsWith("aws:kms", StringComparison.OrdinalIgnoreCase) ? s3 : null;
    }

    [GeneratedRegex(@"^[0-9a-fA-F]{32}\z")]
    private static partial Regex PlainMd5();

}
