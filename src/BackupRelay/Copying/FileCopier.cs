using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Copying;

/// <summary>
/// Copies one file from a download link into a destination: streamed under a process-wide memory budget,
/// resumable from what is already staged, sliced so one call never outlives its invocation, and verified
/// (length, MD5, SHA-256, and the source's own MD5 or multipart ETag when it declares one) before anything looks
/// complete. There is one streamed way, and server-side copy (<c>Copy__Mode=ServerSide</c>) beside it. A byte goes:
/// <list type="number">
/// <item><see cref="CopySource"/>: the link, ranged requests, retries and refreshes, the checksums the source declares;</item>
/// <item><see cref="SegmentedDownload"/> (which blocks each connection asks for: <see cref="SegmentPlan"/>): each connection
/// streams a long range and writes it where it belongs in an <see cref="IStagingFile"/> — a local directory's partial file,
/// or a <see cref="BlockSpool"/> that uploads each block to Blob once whole;</item>
/// <item><see cref="FileHashes"/>: the blocks read back in file order, each hash on its own lane;</item>
/// <item><see cref="CopyCommitter"/>: the commit and its verification.</item>
/// </list>
/// </summary>
public sealed class FileCopier(
    HttpClient download,
    CopyBufferBudget budget,
    HashStateCache hashStates,
    IOptions<CopyOptions> options,
    TimeProvider time,
    ILogger<FileCopier> logger)
{
    /// <summary>The named HTTP client for downloads: no total timeout, no request logging (links are secrets).</summary>
    public const string HttpClientName = "BackupRelay.Download";

    public async Task<CopyResult> CopyAsync(ICopyDestination destination, CopyRequest request, CancellationToken cancellationToken = default)
    {
        var settings = options.Value;
        var path = request.DestinationPath;
        await using var pathLock = await destination.LockAsync(path, cancellationToken);
        var committed = await destination.GetCommittedAsync(path, cancellationToken);
        if (committed is { Verified: true } && (request.Continuation is null || committed.Length == request.Continuation.Size))
        {
            return Committer.AlreadyComplete(destination, path, committed, new CopyStatistics(0, 0, 0, 0, false, true));
        }

        var staged = await destination.GetStagedBlocksAsync(path, cancellationToken);
        var state = new CopyState(request, staged, settings, time.GetTimestamp());
        if (destination.WriteOnce && state.Offset > 0 && !hashStates.Holds(request.CopyId, state.Offset))
        {
            // The hashes of the blocks staged so far are in another process (or lost with it), and a write-once
            // file cannot be hashed back after its commit: read and stage it again from byte 0, in this
            // invocation to the end (slicing again could land the next part in yet another process).
            CopyLog.StartingOverWriteOnce(logger, path, state.Offset);
            state = new CopyState(request, new Dictionary<string, long>(), settings, time.GetTimestamp()) { Unsliced = true };
        }

        var source = new CopySource(download, state, settings, logger);
        try
        {
            return settings.Mode == CopyMode.ServerSide && destination.SupportsServerSideCopy
                ? await ServerSideAsync(destination, state, source, cancellationToken)
                : await StreamAsync(destination, state, source, cancellationToken);
        }
        catch (CopyFailedException ex)
        {
            CopyLog.CopyFailed(logger, path, destination.Description, ex.Message);
            state.Hashes?.Dispose();
            return new CopyResult(CopyOutcome.Failed, state.Size ?? 0, null, null, null, ex.Message, state.Statistics(), ex.ContentMismatch);
        }
    }

    private CopyCommitter Committer => new(options.Value, logger);

    /// <summary>
    /// The one streamed way: a <see cref="SegmentedDownload"/> into an <see cref="IStagingFile"/> (the destination's partial
    /// file, or a <see cref="BlockSpool"/> in front of a block store). With several connections the first request asks for
    /// one block only: its answer tells the size, the source's MD5, and whether the source honours Range (206) or ignores
    /// it (200, the whole file). One connection, or a source that ignores Range, is one segment: one stream to the end.
    /// </summary>
    private async Task<CopyResult> StreamAsync(ICopyDestination destination, CopyState state, CopySource source, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var connections = settings.DownloadConnections;
        var probe = await source.OpenWithRetriesAsync(cancellationToken, connections > 1 ? (state.BlockSize > 0 ? state.BlockSize : settings.BlockSizeBytes) : null);
        if (state.RangeIgnored)
        {
            connections = 1;
        }

        // Hashes run from the state this process kept where the previous slice ended, or from byte 0: a partial file's
        // blocks staged before the offset are read back; a block store's cannot be, so without the state its copy is
        // hashed back after the commit.
        var random = destination as IRandomAccessStaging;
        var kept = state.Offset > 0 ? hashStates.TryTake(state.Request.CopyId, state.Offset) : null;
        var hashFrom = kept is null ? 0 : state.Offset;
        state.Hashes = kept ?? (state.Offset == 0 || random is not null ? state.NewHashes() : null);
        try
        {
            await using var file = random is not null
                ? await random.OpenStagingAsync(state.Request.DestinationPath, cancellationToken)
                : BlockSpool.Create(destination, state, settings, cancellationToken);
            await new SegmentedDownload(state, source, file, budget, connections, time, hashFrom, cancellationToken, settings.MaxDownloadConnections)
                .RunAsync(probe, cancellationToken);
        }
        catch
        {
            state.Hashes?.Dispose();
            state.Hashes = null;
            throw;
        }

        return await EndSliceAsync(destination, state, source, cancellationToken);
    }

    /// <summary>After a streamed slice: the continuation (the hash state kept in this process), or the commit when the file is all read.</summary>
    private async Task<CopyResult> EndSliceAsync(ICopyDestination destination, CopyState state, CopySource source, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (state.Offset < state.Size!.Value)
        {
            if (state.Hashes is { } partial)
            {
                hashStates.Put(state.Request.CopyId, state.Offset, partial);
            }

            CopyLog.SliceDone(logger, state.Request.DestinationPath, state.Offset, state.Size.Value);
            return Continue(state);
        }
        return await Committer.CommitAsync(destination, state, source, cancellationToken);
    }

    private static CopyResult Continue(CopyState state) =>
        new(CopyOutcome.Continue, state.Size!.Value, null, null,
            new CopyContinuation(state.Offset, state.Size.Value, state.BlockSize, state.SourceMd5Hex, state.SourceMultipartEtag), null, state.Statistics());

    /// <summary>The destination fetches each block from the link itself (Put Block From URL); nothing flows through here.</summary>
    private async Task<CopyResult> ServerSideAsync(ICopyDestination destination, CopyState state, CopySource source, CancellationToken cancellationToken)
    {
        using (var probe = await source.OpenWithRetriesAsync(cancellationToken))
        {
            // Only the size and the source's MD5 were wanted.
        }

        using var concurrency = new SemaphoreSlim(options.Value.MaxConcurrency);
        var tasks = new List<Task>();
        while (state.Offset < state.Size!.Value && !state.SliceExhausted(time))
        {
            var offset = state.Offset;
            var length = Math.Min(state.BlockSize, state.Size.Value - offset);
            var id = BlockIds.For(state.BlockSize, offset, state.Request.Generation);
            state.Advance(length);
            if (state.Staged.TryGetValue(id, out var stagedSize) && stagedSize == length)
            {
                state.BlocksSkipped++;
                continue;
            }

            await concurrency.WaitAsync(cancellationToken);
            tasks.Add(Task.Run(async () =>
            {
                try
                {
                    await StageFromUrlWithRefreshAsync(destination, state, source, id, offset, length, cancellationToken);
                }
                finally
                {
                    concurrency.Release();
                }
            }, cancellationToken));
        }

        await Task.WhenAll(tasks);
        state.Hashes?.Dispose();
        state.Hashes = null;
        return state.Offset < state.Size.Value ? Continue(state) : await Committer.CommitAsync(destination, state, source, cancellationToken);
    }

    private async Task StageFromUrlWithRefreshAsync(ICopyDestination destination, CopyState state, CopySource source, string id, long offset, long length,
        CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await destination.StageBlockFromUrlAsync(state.Request.DestinationPath, id, source.Link, offset, length, cancellationToken);
                Interlocked.Increment(ref state.BlocksUploaded);
                return;
            }
            catch (Azure.RequestFailedException ex) when (attempt < options.Value.MaxSourceAttempts && ex.Status is > 0 and < 500)
            {
                CopyLog.SourceRestart(logger, state.Request.DestinationPath, offset, BackupRelay.Storage.StorageErrors.Describe(ex));
                await source.RefreshAsync(cancellationToken);
            }
        }
    }
}

/// <summary>A copy that cannot succeed as it is; <see cref="ContentMismatch"/>: the bytes received were not the source's (a fresh copy may succeed).</summary>
public sealed class CopyFailedException(string message, bool contentMismatch = false) : Exception(message)
{
    public bool ContentMismatch { get; } = contentMismatch;
}

/// <summary>The copy engine's log events, for every part of it (ids 30-39: operators' alerts name them; category <see cref="FileCopier"/>).</summary>
internal static partial class CopyLog
{
    [LoggerMessage(30, LogLevel.Information, "{Path} is already copied and verified in {Destination}")]
    public static partial void AlreadyComplete(ILogger logger, string path, string destination);

    [LoggerMessage(31, LogLevel.Information, "{Path}: slice ends at {Offset} of {Size} bytes; continuing later")]
    public static partial void SliceDone(ILogger logger, string path, long offset, long size);

    [LoggerMessage(32, LogLevel.Information, "{Path} copied to {Destination}: {Size} bytes verified (hashes recomputed: {Recomputed})")]
    public static partial void Completed(ILogger logger, string path, string destination, long size, bool recomputed);

    [LoggerMessage(38, LogLevel.Warning, "{Path} copied to {Destination}: {Size} bytes stored as received, NOT verified against the source " +
        "(it declares no checksum usable for this file; Copy__VerifyBySecondRead=true reads it twice)")]
    public static partial void CompletedUnverified(ILogger logger, string path, string destination, long size);

    [LoggerMessage(33, LogLevel.Warning, "{Path}: source failed at offset {Offset} ({Reason}); refreshing the link and resuming")]
    public static partial void SourceRestart(ILogger logger, string path, long offset, string reason);

    [LoggerMessage(39, LogLevel.Warning, "{Path}: the hashes of the {Offset} bytes staged earlier are not in this process and the destination is write-once; copying the file again from byte 0")]
    public static partial void StartingOverWriteOnce(ILogger logger, string path, long offset);

    [LoggerMessage(34, LogLevel.Error, "{Path} could not be copied to {Destination}: {Reason}")]
    public static partial void CopyFailed(ILogger logger, string path, string destination, string reason);
}
