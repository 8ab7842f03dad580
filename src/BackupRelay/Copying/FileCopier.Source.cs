using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace BackupRelay.Copying;

/// <summary>
/// The source: ranged GETs of the download link, refreshed when it expires or fails, retried with backoff, and
/// the checksums the source declares (a plain MD5 ETag or Content-MD5, a multipart ETag).
/// </summary>
public sealed partial class FileCopier
{
    /// <summary>Opens <c>bytes=offset-(offset+length-1)</c>; the answer must be that range of a file of the known size.</summary>
    private async Task<SourceStream> OpenRangeAsync(CopyState state, Uri link, long offset, int length, CancellationToken cancellationToken)
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

            _ = SameSourceMd5(state, response);
            _ = SameMultipartEtag(state, response);
            return new SourceStream(response, await response.Content.ReadAsStreamAsync(cancellationToken));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>The link every range uses; one refresh at a time, and only if no other range already replaced the link that failed.</summary>
    private sealed class LinkKeeper(CopyState state)
    {
        private readonly SemaphoreSlim _refresh = new(1);
        private volatile Uri _current = state.Link;

        public Uri Current => _current;

        public async Task RefreshAsync(Uri failed, CancellationToken cancellationToken)
        {
            await _refresh.WaitAsync(cancellationToken);
            try
            {
                if (_current == failed)
                {
                    _current = await state.Request.RefreshLinkAsync(cancellationToken);
                    state.Link = _current;
                }
            }
            finally
            {
                _refresh.Release();
            }
        }
    }

    /// <summary>Opens the source at the current offset, refreshing the link after failures, a bounded number of times.</summary>
    private async Task<SourceStream?> OpenWithRetriesAsync(CopyState state, CancellationToken cancellationToken, long? boundedLength = null)
    {
        while (true)
        {
            try
            {
                return await OpenAsync(state, cancellationToken, boundedLength);
            }
            catch (SourceFailedException ex)
            {
                await RecoverAsync(state, ex, cancellationToken);
            }
        }
    }

    private async Task RecoverAsync(CopyState state, Exception failure, CancellationToken cancellationToken)
    {
        state.ConsecutiveSourceFailures++;
        state.SourceRestarts++;
        if (state.ConsecutiveSourceFailures >= options.Value.MaxSourceAttempts)
        {
            throw new CopyFailedException($"The source failed {state.ConsecutiveSourceFailures} times in a row at offset {state.Offset}: {failure.Message}");
        }

        Log.SourceRestart(logger, state.Request.DestinationPath, state.Offset, failure.Message);
        await RefreshLinkAsync(state, cancellationToken);
    }

    private static async Task RefreshLinkAsync(CopyState state, CancellationToken cancellationToken) =>
        state.Link = await state.Request.RefreshLinkAsync(cancellationToken);

    /// <summary>Fills <paramref name="block"/> from the source, reopening it at the block's start after a drop.</summary>
    private async Task<SourceStream?> ReadBlockAsync(CopyState state, SourceStream? source, Memory<byte> block, CancellationToken cancellationToken)
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
            catch (Exception ex) when (ex is SourceFailedException or IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
            {
                source?.Dispose();
                source = null;
                await RecoverAsync(state, ex, cancellationToken);
                try
                {
                    source = await OpenAsync(state, cancellationToken);
                }
                catch (SourceFailedException)
                {
                    // Counted on the next turn of the loop.
                }
            }
        }
    }

    /// <param name="boundedLength">Ask for this many bytes only (a probe); null: from the offset to the end.</param>
    private async Task<SourceStream?> OpenAsync(CopyState state, CancellationToken cancellationToken, long? boundedLength = null)
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
                state.SetSize(0, options.Value);
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

            state.SourceMd5Hex ??= SameSourceMd5(state, response);
            state.SourceMultipartEtag ??= SameMultipartEtag(state, response);
            state.SetSize(total, options.Value);
            if (state.Offset != offset && state.Offset < total)
            {
                // Knowing the size moved the start (the staged blocks were of an unusable size): start again there.
                response.Dispose();
                return await OpenAsync(state, cancellationToken, state.RangeIgnored ? null : boundedLength);
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

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return await download.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new SourceFailedException($"The source could not be reached ({ex.HttpRequestError}).");
        }
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
    private static string? SameSourceMd5(CopyState state, HttpResponseMessage response)
    {
        var md5 = SourceMd5(response);
        if (state.SourceMd5Hex is { } previous && md5 is not null && !string.Equals(previous, md5, StringComparison.OrdinalIgnoreCase))
        {
            throw new CopyFailedException("The source's MD5 changed during the copy.");
        }

        return md5;
    }

    /// <summary>The source's multipart ETag (null: none), which must be the one the copy started with.</summary>
    private static string? SameMultipartEtag(CopyState state, HttpResponseMessage response)
    {
        var etag = response.Headers.ETag?.Tag?.Trim('"');
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

    /// <summary>The object's MD5 when the source declares one: Content-MD5, or an ETag that is a plain MD5 (not multipart "-N").</summary>
    private static string? SourceMd5(HttpResponseMessage response)
    {
        if (response.StatusCode == HttpStatusCode.OK && response.Content.Headers.ContentMD5 is { Length: 16 } contentMd5)
        {
            return Convert.ToHexStringLower(contentMd5);
        }

        var etag = response.Headers.ETag?.Tag?.Trim('"');
        return etag is not null && PlainMd5().IsMatch(etag) ? etag.ToLowerInvariant() : null;
    }

    [GeneratedRegex(@"^[0-9a-fA-F]{32}\z")]
    private static partial Regex PlainMd5();

    private sealed class SourceStream(HttpResponseMessage response, Stream stream) : IDisposable
    {
        public Stream Stream { get; } = stream;

        public void Dispose()
        {
            Stream.Dispose();
            response.Dispose();
        }
    }

    private sealed class SourceFailedException(string message) : Exception(message);
}
