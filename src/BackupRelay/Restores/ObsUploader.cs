using System.Security.Cryptography;
using BackupRelay.Copying;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Restores;

/// <summary>One verified copy file to upload from the destination (Azure) to OBS.</summary>
/// <param name="Offset">Where this slice starts (0 for the first); the upload progress record is what counts.</param>
public sealed record UploadRequest(string RunId, string File, string SourcePath, string Bucket, string Key, long Size, string? Md5Hex, string Sha256Hex,
    long Offset, IReadOnlyDictionary<string, string> Metadata);

public enum UploadOutcome
{
    Completed,
    Continue,
    Failed,
}

/// <param name="Offset">Bytes read and hashed in order so far (the file's size once completed).</param>
/// <param name="Connections">Parts the upload reached sending at once (it may grow while more pay; 0: none sent).</param>
public sealed record UploadResult(UploadOutcome Outcome, long Offset, string? FailureReason, int PartsUploaded, int PartsSkipped, bool AlreadyComplete,
    int Connections = 0);

/// <summary>
/// Uploads one file of a verified copy to OBS, the copy engine's guarantees in the other direction:
/// each part read from the destination by a ranged read of its own (in parallel, as many as the process-wide
/// buffer budget holds), SHA-256 computed over the whole file in order and compared with the manifest's
/// before the object is completed (a damaged copy never becomes an OBS object), each part sent with its
/// Content-MD5 so OBS checks it (at most <c>Obs__MaxConcurrency</c> at once), the completed object's multipart
/// ETag checked against the parts OBS acknowledged, sliced so one call never outlives its invocation, and
/// resumable: parts OBS acknowledged are
/// recorded (<see cref="UploadProgressStore"/>) and not sent again — only read again, to be hashed and
/// checked against the part's recorded MD5.
/// </summary>
public sealed partial class ObsUploader(
    ObsClient obs,
    ICopyDestination source,
    UploadProgressStore progressStore,
    CopyBufferBudget budget,
    HashStateCache hashStates,
    IOptions<ObsOptions> obsOptions,
    IOptions<CopyOptions> copyOptions,
    TimeProvider time,
    ILogger<ObsUploader> logger)
{
    /// <summary>Object metadata names (sent as <c>x-amz-meta-*</c>).</summary>
    public const string Md5Metadata = "backuprelay-md5";
    public const string Sha256Metadata = "backuprelay-sha256";

    public async Task<UploadResult> UploadAsync(UploadRequest request, CancellationToken cancellationToken)
    {
        var existing = await obs.HeadAsync(request.Bucket, request.Key, cancellationToken);
        if (IsComplete(existing, request))
        {
            Log.AlreadyUploaded(logger, request.RunId, request.File);
            return new UploadResult(UploadOutcome.Completed, request.Size, null, 0, 0, AlreadyComplete: true);
        }

        return request.Size <= obsOptions.Value.SinglePutMaxBytes
            ? await PutWholeAsync(request, cancellationToken)
            : await MultipartAsync(request, cancellationToken);
    }

    private static bool IsComplete(ObsObject? found, UploadRequest request) =>
        found is not null && found.Length == request.Size
        && (request.Md5Hex is null || (found.Metadata.TryGetValue(Md5Metadata, out var md5) && string.Equals(md5, request.Md5Hex, StringComparison.OrdinalIgnoreCase)))
        && found.Metadata.TryGetValue(Sha256Metadata, out var sha) && string.Equals(sha, request.Sha256Hex, StringComparison.OrdinalIgnoreCase);

    private Dictionary<string, string> Metadata(UploadRequest request)
    {
        var metadata = new Dictionary<string, string>(request.Metadata) { [Sha256Metadata] = request.Sha256Hex };
        if (request.Md5Hex is { } md5)
        {
            metadata[Md5Metadata] = md5;
        }

        return metadata;
    }

    private async Task<UploadResult> PutWholeAsync(UploadRequest request, CancellationToken cancellationToken)
    {
        var length = (int)request.Size;
        using var lease = await budget.RentAsync(length, cancellationToken);
        await using (var stream = await source.OpenReadAsync(request.SourcePath, 0, cancellationToken))
        {
            var read = await stream.ReadAtLeastAsync(lease.Buffer.AsMemory(0, length), length, throwOnEndOfStream: false, cancellationToken);
            if (read < length || await stream.ReadAsync(new byte[1], cancellationToken) > 0)
            {
                return Mismatch(request, read < length ? $"the copy in Azure is {read} bytes; its manifest says {request.Size}"
                    : $"the copy in Azure is longer than the {request.Size} bytes its manifest says");
            }
        }

        var data = lease.Buffer.AsSpan(0, length);
        var md5 = MD5.HashData(data);
        if (Difference(request, SHA256.HashData(data)) is { } difference)
        {
            return Mismatch(request, difference);
        }

        await obs.PutObjectAsync(request.Bucket, request.Key, lease.Buffer, length, md5, Metadata(request), cancellationToken);
        Log.Uploaded(logger, request.RunId, request.File, request.Size, 1);
        return new UploadResult(UploadOutcome.Completed, request.Size, null, 1, 0, false);
    }

    private async Task<UploadResult> MultipartAsync(UploadRequest request, CancellationToken cancellationToken)
    {
        var settings = obsOptions.Value;
        var partSize = settings.PartSizeFor(request.Size);
        var progress = await progressStore.GetAsync(request.RunId, request.File, cancellationToken);
        if (progress is null || progress.PartSize != partSize || progress.UploadId.Length == 0)
        {
            progress = new UploadProgress
            {
                UploadId = await obs.InitiateAsync(request.Bucket, request.Key, Metadata(request), cancellationToken),
                PartSize = partSize,
            };
            await progressStore.SaveAsync(request.RunId, request.File, progress, cancellationToken);
        }

        // Hashes run from byte 0: the state this process kept when the previous slice ended, or a new one
        // (then the parts before the slice are read again, hashed and checked, not sent again).
        var hashKey = $"obs/{request.RunId}/{request.File}";
        var kept = request.Offset > 0 ? hashStates.TryTake(hashKey, request.Offset) : null;
        var hashes = kept ?? FileHashes.Sha256Only();
        var offset = kept is null ? 0 : request.Offset;
        var acknowledged = progress.Parts.ToDictionary(p => p.Number);
        var session = new PartSession(request, progress);
        var started = time.GetTimestamp();
        var queuedBytes = 0L;
        using var pipeline = new BlockPipeline(budget, hashes, settings.MaxConcurrency, cancellationToken);
        using var adaptStop = new CancellationTokenSource();
        var adapting = pipeline.AdaptSendsAsync(settings.MaxConcurrency, settings.MaxUploadConnections, settings.AdaptInterval, time, adaptStop.Token);
        try
        {
            // Each part is its own ranged read of the copy, started as soon as the budget gives it a buffer: the reads run
            // in parallel (as many as the budget holds), the hashes follow in file order, the sends MaxConcurrency at once
            // to start with, more while more pay (AdaptSendsAsync).
            await pipeline.RunAsync(async () =>
            {
                while (offset < request.Size && !pipeline.Stopped && !(offset > request.Offset && SliceExhausted(queuedBytes, started)))
                {
                    var length = (int)Math.Min(partSize, request.Size - offset);
                    var part = new PartRead((int)(offset / partSize) + 1, offset, length);
                    var lease = await pipeline.RentAsync(length);
                    var filled = ReadPartAsync(request, part, lease.Buffer.AsMemory(0, length), pipeline.Token);
                    offset += length;
                    if (!(acknowledged.TryGetValue(part.Number, out var earlier) && earlier.Length == length))
                    {
                        queuedBytes += length;
                    }

                    pipeline.Add(lease, length, filled, (data, token) => SendOrSkipAsync(session, part, acknowledged, data, token));
                }
            });
        }
        catch
        {
            hashes.Dispose();
            throw;
        }
        finally
        {
            await adaptStop.CancelAsync();
        }

        var connections = await adapting;
        var skipped = session.Skipped;
        if (pipeline.Error is UploadMismatchException mismatch)
        {
            hashes.Dispose();
            return await AbandonAsync(request, progress, mismatch.Message, cancellationToken);
        }

        if (pipeline.Error is { } error)
        {
            hashes.Dispose();
            if (error is ObsException { IsNoSuchUpload: true })
            {
                // The upload is gone (aborted, expired, or completed by a duplicate delivery): start again next time.
                await progressStore.DeleteAsync(request.RunId, request.File, cancellationToken);
            }

            pipeline.ThrowIfFailed();
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (offset < request.Size)
        {
            hashStates.Put(hashKey, offset, hashes);
            Log.Slice(logger, request.RunId, request.File, offset, request.Size, session.Sent, skipped);
            return new UploadResult(UploadOutcome.Continue, offset, null, session.Sent, skipped, false, connections);
        }

        var (_, sha256) = hashes.Finish();
        hashes.Dispose();
        if (Difference(request, sha256) is { } difference)
        {
            return await AbandonAsync(request, progress, difference, cancellationToken);
        }

        var parts = progress.Parts.OrderBy(p => p.Number).ToList();
        var expectedParts = (int)((request.Size + partSize - 1) / partSize);
        if (parts.Count != expectedParts || parts.Where((p, i) => p.Number != i + 1).Any())
        {
            throw new ObsException("CompleteMultipartUpload", null, "IncompleteUpload",
                $"{parts.Count} of {expectedParts} parts are acknowledged; the next delivery uploads the rest", transient: true);
        }

        string? answered = null;
        try
        {
            answered = await obs.CompleteAsync(request.Bucket, request.Key, progress.UploadId, parts.Select(p => new ObsPart(p.Number, p.Length, p.ETag)),
                cancellationToken);
        }
        catch (ObsException ex) when (ex.IsNoSuchUpload)
        {
            // Completed by an earlier delivery whose answer was lost, or gone: the object tells which.
            if (!IsComplete(await obs.HeadAsync(request.Bucket, request.Key, cancellationToken), request))
            {
                await progressStore.DeleteAsync(request.RunId, request.File, cancellationToken);
                throw;
            }
        }

        // OBS joined the parts it acknowledged: the ETag it answers must be the one those parts make.
        if (answered is not null && CompletedEtagProblem(answered, parts, request.Md5Hex) is { } wrongEtag)
        {
            return new UploadResult(UploadOutcome.Failed, offset, wrongEtag, session.Sent, skipped, false);
        }

        var written = await obs.HeadAsync(request.Bucket, request.Key, cancellationToken);
        if (written is null || written.Length != request.Size)
        {
            return new UploadResult(UploadOutcome.Failed, offset,
                $"OBS holds {(written is null ? "no object" : $"{written.Length} bytes")} after the upload completed; the copy has {request.Size}", session.Sent, skipped, false);
        }

        await progressStore.DeleteAsync(request.RunId, request.File, cancellationToken);
        Log.Uploaded(logger, request.RunId, request.File, request.Size, parts.Count);
        return new UploadResult(UploadOutcome.Completed, request.Size, null, session.Sent, skipped, false, connections);
    }

    /// <summary>A slice ends once it sent <c>Copy__SliceMaxBytes</c> or ran <c>Copy__SliceMaxDuration</c> (reading parts already in OBS again counts time only).</summary>
    private bool SliceExhausted(long bytesSent, long started) => copyOptions.Value.SliceEnded(bytesSent, time.GetElapsedTime(started));

    /// <summary>One part of the copy: which, where, and its MD5 once read.</summary>
    private sealed record PartRead(int Number, long Offset, int Length)
    {
        public byte[]? Md5 { get; set; }
    }

    /// <summary>
    /// Reads one part of the copy with a ranged read of its own and hashes it (its MD5, the part's Content-MD5); the last
    /// part asks for one byte more, to see a copy longer than its manifest says.
    /// </summary>
    private async Task ReadPartAsync(UploadRequest request, PartRead part, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var last = part.Offset + part.Length == request.Size;
        await using var stream = await source.OpenRangeAsync(request.SourcePath, part.Offset, part.Length + (last ? 1 : 0), cancellationToken);
        var read = await stream.ReadAtLeastAsync(buffer, part.Length, throwOnEndOfStream: false, cancellationToken);
        if (read < part.Length)
        {
            throw new UploadMismatchException($"the copy in Azure ends at byte {part.Offset + read}; its manifest says {request.Size}");
        }

        if (last && await stream.ReadAsync(new byte[1], cancellationToken) > 0)
        {
            throw new UploadMismatchException($"the copy in Azure is longer than the {request.Size} bytes its manifest says");
        }

        part.Md5 = MD5.HashData(buffer.Span);
    }

    /// <summary>Sends a part read, unless OBS acknowledged these very bytes (same number, length and MD5) in an earlier call.</summary>
    private async Task SendOrSkipAsync(PartSession session, PartRead part, IReadOnlyDictionary<int, UploadedPart> acknowledged, ReadOnlyMemory<byte> data,
        CancellationToken cancellationToken)
    {
        var md5 = part.Md5!;
        if (acknowledged.TryGetValue(part.Number, out var done) && done.Length == part.Length
            && string.Equals(done.Md5Hex, Convert.ToHexStringLower(md5), StringComparison.OrdinalIgnoreCase))
        {
            session.Skip();
            return;
        }

        var request = session.Request;
        var etag = await obs.UploadPartAsync(request.Bucket, request.Key, session.Progress.UploadId, part.Number, data, md5, cancellationToken);
        await session.AcknowledgeAsync(new UploadedPart(part.Number, data.Length, etag, Convert.ToHexStringLower(md5)), progressStore, cancellationToken);
    }

    /// <summary>
    /// Why the ETag answered for the completed object is not the one its parts make, or null. OBS and S3 answer the
    /// multipart ETag (<see cref="ExpectedMultipartEtag"/>); some S3-compatible stores answer the whole object's MD5
    /// instead, which is checked against the manifest's MD5 (the bytes read are the manifest's: their SHA-256 matched). Neither can be checked where the parts' ETags were
    /// not their MD5s (server-side encryption): then only a drill's read-back proves what is at rest.
    /// </summary>
    internal static string? CompletedEtagProblem(string answered, IReadOnlyList<UploadedPart> parts, string? md5Hex)
    {
        if (ExpectedMultipartEtag(parts) is not { } expected)
        {
            return null;
        }

        var etag = answered.Trim('"');
        var multipart = etag.Contains('-', StringComparison.Ordinal);
        if (!multipart && md5Hex is null)
        {
            // A whole-object MD5, for a file whose manifest records none (its source's multipart ETag proved it): only a
            // drill's read-back proves what is at rest.
            return null;
        }

        var matches = multipart
            ? string.Equals(etag, expected, StringComparison.OrdinalIgnoreCase)
            : string.Equals(etag, md5Hex, StringComparison.OrdinalIgnoreCase);
        return matches ? null : $"OBS answered the completed object's ETag {answered}; its acknowledged parts make \"{expected}\" (whole-object MD5 {md5Hex})";
    }

    /// <summary>
    /// The multipart ETag OBS computes for these parts (the MD5 of their MD5s, then <c>-</c> and their count), when every
    /// part's answered ETag is the MD5 this uploader sent; null when they are not (server-side encryption).
    /// </summary>
    internal static string? ExpectedMultipartEtag(IReadOnlyList<UploadedPart> parts)
    {
        if (parts.Any(p => !string.Equals(p.ETag.Trim('"'), p.Md5Hex, StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        var md5s = parts.OrderBy(p => p.Number).SelectMany(p => Convert.FromHexString(p.Md5Hex)).ToArray();
        return $"{Convert.ToHexStringLower(MD5.HashData(md5s))}-{parts.Count}";
    }

    /// <summary>The copy does not match its manifest: nothing becomes an object, the upload is aborted.</summary>
    private async Task<UploadResult> AbandonAsync(UploadRequest request, UploadProgress progress, string reason, CancellationToken cancellationToken)
    {
        try
        {
            await obs.AbortAsync(request.Bucket, request.Key, progress.UploadId, cancellationToken);
        }
        catch (ObsException ex)
        {
            Log.AbortFailed(logger, request.RunId, request.File, ex.Message);
        }

        await progressStore.DeleteAsync(request.RunId, request.File, cancellationToken);
        return Mismatch(request, reason);
    }

    private UploadResult Mismatch(UploadRequest request, string reason)
    {
        Log.Mismatch(logger, request.RunId, request.File, reason);
        return new UploadResult(UploadOutcome.Failed, 0, reason, 0, 0, false);
    }

    /// <summary>
    /// Why the bytes read from the copy are not the ones its manifest records (null: they are). SHA-256 alone: the
    /// manifest's MD5 would prove the same thing again, and each part's MD5 is computed anyway for OBS to check.
    /// </summary>
    private static string? Difference(UploadRequest request, byte[] sha256)
    {
        var shaHex = Convert.ToHexStringLower(sha256);
        return string.Equals(shaHex, request.Sha256Hex, StringComparison.OrdinalIgnoreCase)
            ? null
            : $"the copy in Azure does not match its manifest: SHA-256 {shaHex}, the manifest says {request.Sha256Hex}";
    }

    /// <summary>The parts of one call: acknowledged parts go into the progress record, one save at a time.</summary>
    private sealed class PartSession(UploadRequest request, UploadProgress progress)
    {
        private readonly SemaphoreSlim _save = new(1);
        private int _sent;
        private int _skipped;

        public UploadRequest Request { get; } = request;
        public UploadProgress Progress { get; } = progress;
        public int Sent => Volatile.Read(ref _sent);
        public int Skipped => Volatile.Read(ref _skipped);

        public void Skip() => Interlocked.Increment(ref _skipped);

        public async Task AcknowledgeAsync(UploadedPart part, UploadProgressStore store, CancellationToken cancellationToken)
        {
            await _save.WaitAsync(cancellationToken);
            try
            {
                Progress.Parts.RemoveAll(p => p.Number == part.Number);
                Progress.Parts.Add(part);
                await store.SaveAsync(Request.RunId, Request.File, Progress, cancellationToken);
            }
            finally
            {
                _save.Release();
            }

            Interlocked.Increment(ref _sent);
        }
    }

    private sealed class UploadMismatchException(string message) : Exception(message);

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Information, "Run {RunId}: {File} uploaded to OBS and verified ({Size} bytes, {Parts} parts)")]
        public static partial void Uploaded(ILogger logger, string runId, string file, long size, int parts);

        [LoggerMessage(101, LogLevel.Information, "Run {RunId}: {File} uploaded to OBS up to byte {Offset} of {Size} ({Sent} parts sent, {Skipped} already there); continuing")]
        public static partial void Slice(ILogger logger, string runId, string file, long offset, long size, int sent, int skipped);

        [LoggerMessage(102, LogLevel.Information, "Run {RunId}: {File} is already in OBS, verified")]
        public static partial void AlreadyUploaded(ILogger logger, string runId, string file);

        [LoggerMessage(103, LogLevel.Error, "Run {RunId}: {File} was not uploaded: {Reason}")]
        public static partial void Mismatch(ILogger logger, string runId, string file, string reason);

        [LoggerMessage(104, LogLevel.Warning, "Run {RunId}: the abandoned upload of {File} could not be aborted: {Reason}")]
        public static partial void AbortFailed(ILogger logger, string runId, string file, string reason);
    }
}
