using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Copying;

/// <summary>
/// Copies one file from a download link into a destination: streamed under a process-wide memory budget,
/// resumable from what is already staged, sliced so one call never outlives its invocation, and verified
/// (length, MD5, SHA-256, and the source's own MD5 or multipart ETag when it declares one) before anything looks
/// complete. This class picks the way for the destination and the source; the parts are their own types:
/// <list type="bullet">
/// <item><see cref="CopySource"/>: the link, ranged requests, retries and refreshes, the checksums the source declares;</item>
/// <item><see cref="SegmentedDownload"/> and <see cref="SegmentPlan"/>: long ranges over several connections, written where
/// they land (a local directory's partial file, or a <see cref="BlockSpool"/> in front of Blob) and hashed back in order;</item>
/// <item><see cref="BlockPipeline"/>: blocks in file order under the budget, hashed in order and sent in parallel (one
/// stream; a ranged request per block into Blob when <c>Copy__Spool=false</c>), shared with the upload to OBS;</item>
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

    private async Task<CopyResult> StreamAsync(ICopyDestination destination, CopyState state, CopySource source, CancellationToken cancellationToken)
    {
        var settings = options.Value;

        // With several connections the first request asks for one block only: its answer tells the size,
        // the source's MD5, and whether the source honours Range (206) or ignores it (200, the whole file).
        var parallel = settings.DownloadConnections > 1;
        var probe = await source.OpenWithRetriesAsync(cancellationToken, parallel ? (state.BlockSize > 0 ? state.BlockSize : settings.BlockSizeBytes) : null);
        if (parallel && !state.RangeIgnored && (destination is IRandomAccessStaging || settings.Spool))
        {
            return await SegmentedAsync(destination, state, source, probe, cancellationToken);
        }

        if (parallel && !state.RangeIgnored && state.Size - state.Offset > state.BlockSize)
        {
            return await BlockRangesAsync(destination, state, source, probe, cancellationToken);
        }

        if (probe is not null && state.StreamEnd < state.Size - 1)
        {
            // One connection from here on: a stream to the end of the file, not just the probed block.
            probe.Dispose();
            probe = await source.OpenWithRetriesAsync(cancellationToken);
        }

        return await OneStreamAsync(destination, state, source, probe, cancellationToken);
    }

    /// <summary>
    /// Long ranges over several connections, written where they land and hashed back in order (<see cref="SegmentedDownload"/>):
    /// into the destination's partial file, or a <see cref="BlockSpool"/> in front of a block store.
    /// </summary>
    private async Task<CopyResult> SegmentedAsync(ICopyDestination destination, CopyState state, CopySource source, SourceStream? probe,
        CancellationToken cancellationToken)
    {
        // Hashes run from the state this process kept where the previous slice ended, or from byte 0: a partial file's
        // blocks staged before the offset are read back; a block store's cannot be, so without the state its copy is
        // hashed back after the commit (as the other ways do).
        var random = destination as IRandomAccessStaging;
        var kept = state.Offset > 0 ? hashStates.TryTake(state.Request.CopyId, state.Offset) : null;
        var hashFrom = kept is null ? 0 : state.Offset;
        state.Hashes = kept ?? (state.Offset == 0 || random is not null ? new FileHashes(state.NewMultipartCheck()) : null);
        var probeOffset = state.Offset;
        if (probe is not null && state.StreamEnd != probeOffset + Math.Min(state.BlockSize, state.Size!.Value - probeOffset) - 1)
        {
            probe.Dispose();
            probe = null;
        }

        try
        {
            await using var file = random is not null
                ? await random.OpenStagingAsync(state.Request.DestinationPath, cancellationToken)
                : BlockSpool.Create(destination, state, options.Value, cancellationToken);
            await new SegmentedDownload(state, source, file, budget, options.Value.DownloadConnections, time, hashFrom, cancellationToken)
                .RunAsync(probe, probeOffset, cancellationToken);
        }
        catch
        {
            state.Hashes?.Dispose();
            state.Hashes = null;
            throw;
        }

        return await EndSliceAsync(destination, state, source, cancellationToken);
    }

    /// <summary>
    /// One file over several ranged connections into a block store (<c>Copy__DownloadConnections</c>): each block is
    /// its own <c>Range</c> request, fetched while others are, staged as it arrives, hashed in order; every block
    /// holds a buffer from the budget from before its request until it is hashed and staged, so memory stays
    /// bounded however slow one range is.
    /// </summary>
    private async Task<CopyResult> BlockRangesAsync(ICopyDestination destination, CopyState state, CopySource source, SourceStream? probe,
        CancellationToken cancellationToken)
    {
        var settings = options.Value;
        state.Hashes = state.Offset == 0 ? new FileHashes(state.NewMultipartCheck()) : hashStates.TryTake(state.Request.CopyId, state.Offset);
        using var connections = new SemaphoreSlim(settings.DownloadConnections);
        using var pipeline = new BlockPipeline(budget, state.Hashes, settings.MaxConcurrency, cancellationToken);
        var probeStart = state.Offset;
        try
        {
            while (state.Offset < state.Size!.Value && !pipeline.Stopped && !state.SliceExhausted(time))
            {
                var (offset, length, id) = NextBlock(state);
                var lease = await pipeline.RentAsync(length);
                try
                {
                    await connections.WaitAsync(pipeline.Token);
                }
                catch
                {
                    lease.Dispose();
                    throw;
                }

                // The probe's answer carries the first block: read it rather than asking again.
                var opened = probe is not null && offset == probeStart && state.StreamEnd == offset + length - 1 ? probe : null;
                if (probe is not null && opened is null)
                {
                    probe.Dispose();
                }

                probe = null;
                state.Advance(length);
                var fetch = FetchAsync(source, offset, lease.Buffer.AsMemory(0, length), opened, connections, pipeline.Token);
                pipeline.Add(lease, length, fetch, Sender(destination, state, id, offset, length));
            }
        }
        catch (OperationCanceledException) when (pipeline.Error is not null && !cancellationToken.IsCancellationRequested)
        {
            // A block failed while this loop waited for a buffer or a connection: that failure is thrown below.
        }
        finally
        {
            probe?.Dispose();
            await pipeline.DrainAsync();
        }

        return await EndPipelineAsync(destination, state, source, pipeline, cancellationToken);
    }

    private static async Task FetchAsync(CopySource source, long offset, Memory<byte> block, SourceStream? opened, SemaphoreSlim connections,
        CancellationToken cancellationToken)
    {
        try
        {
            await source.FetchBlockAsync(offset, block, opened, cancellationToken);
        }
        finally
        {
            connections.Release();
        }
    }

    /// <summary>One stream from the offset to the end (one connection, or a source that ignores Range), read block by block into the pipeline.</summary>
    private async Task<CopyResult> OneStreamAsync(ICopyDestination destination, CopyState state, CopySource source, SourceStream? stream,
        CancellationToken cancellationToken)
    {
        // Hashes run from byte 0: a fresh state, or the one this process kept when the previous slice ended here.
        state.Hashes = state.Offset == 0 ? new FileHashes(state.NewMultipartCheck()) : hashStates.TryTake(state.Request.CopyId, state.Offset);
        using var pipeline = new BlockPipeline(budget, state.Hashes, options.Value.MaxConcurrency, cancellationToken);
        try
        {
            while (state.Offset < state.Size!.Value && !pipeline.Stopped && !state.SliceExhausted(time))
            {
                var (offset, length, id) = NextBlock(state);
                var lease = await pipeline.RentAsync(length);
                try
                {
                    stream = await source.ReadBlockAsync(stream, lease.Buffer.AsMemory(0, length), pipeline.Token);
                }
                catch
                {
                    lease.Dispose();
                    throw;
                }

                state.Advance(length);
                pipeline.Add(lease, length, Task.CompletedTask, Sender(destination, state, id, offset, length));
            }
        }
        catch (OperationCanceledException) when (pipeline.Error is not null && !cancellationToken.IsCancellationRequested)
        {
            // An upload failed while this loop waited for a buffer: that failure is thrown below.
        }
        finally
        {
            stream?.Dispose();
            await pipeline.DrainAsync();
        }

        return await EndPipelineAsync(destination, state, source, pipeline, cancellationToken);
    }

    private static (long Offset, int Length, string Id) NextBlock(CopyState state)
    {
        var length = (int)Math.Min(state.BlockSize, state.Size!.Value - state.Offset);
        return (state.Offset, length, BlockIds.For(state.BlockSize, state.Offset, state.Request.Generation));
    }

    /// <summary>How a block reaches the destination: staged, or nothing when an earlier attempt staged it already.</summary>
    private Func<ReadOnlyMemory<byte>, CancellationToken, Task>? Sender(ICopyDestination destination, CopyState state, string id, long offset, int length)
    {
        if (state.Staged.TryGetValue(id, out var stagedSize) && stagedSize == length)
        {
            state.BlocksSkipped++;
            return null;
        }

        return (data, token) => StageAsync(destination, state, id, offset, data, token);
    }

    /// <summary>Stages one block (with its MD5 for the destination to check, when <c>Copy__BlockContentMd5</c>).</summary>
    private async Task StageAsync(ICopyDestination destination, CopyState state, string id, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var md5 = options.Value.BlockContentMd5 ? System.Security.Cryptography.MD5.HashData(data.Span) : null;
        await destination.StageBlockAsync(state.Request.DestinationPath, id, offset, data, md5, cancellationToken);
        Interlocked.Increment(ref state.BlocksUploaded);
    }

    private async Task<CopyResult> EndPipelineAsync(ICopyDestination destination, CopyState state, CopySource source, BlockPipeline pipeline,
        CancellationToken cancellationToken)
    {
        if (pipeline.Error is not null)
        {
            state.Hashes?.Dispose();
            state.Hashes = null;
            pipeline.ThrowIfFailed();
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
