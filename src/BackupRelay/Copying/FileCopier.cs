using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Copying;

/// <summary>
/// Copies one file from a download link into a destination: streamed into blocks uploaded in
/// parallel under a process-wide memory budget, resumable from the blocks already staged, sliced
/// so one call never outlives its invocation, and verified (length, MD5, SHA-256, and the source's
/// own MD5 when it declares one) before anything looks complete. Here: the entry point and the one-stream
/// copy; the source (links, ranges, retries) is in <c>FileCopier.Source.cs</c>, the parallel block pipeline in
/// <c>FileCopier.Pipeline.cs</c>, the commit and its verification in <c>FileCopier.Commit.cs</c>, and one
/// call's progress in <c>FileCopier.State.cs</c>.
/// </summary>
public sealed partial class FileCopier(
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
            return AlreadyComplete(destination, path, committed, new CopyStatistics(0, 0, 0, 0, false, true));
        }

        var staged = await destination.GetStagedBlocksAsync(path, cancellationToken);
        var state = new CopyState(request, staged, settings, time.GetTimestamp());
        if (destination.WriteOnce && state.Offset > 0 && !hashStates.Holds(request.CopyId, state.Offset))
        {
            // The hashes of the blocks staged so far are in another process (or lost with it), and a write-once
            // file cannot be hashed back after its commit: read and stage it again from byte 0, in this
            // invocation to the end (slicing again could land the next part in yet another process).
            Log.StartingOverWriteOnce(logger, path, state.Offset);
            state = new CopyState(request, new Dictionary<string, long>(), settings, time.GetTimestamp()) { Unsliced = true };
        }

        try
        {
            return settings.Mode == CopyMode.ServerSide && destination.SupportsServerSideCopy
                ? await ServerSideAsync(destination, state, cancellationToken)
                : await StreamAsync(destination, state, cancellationToken);
        }
        catch (CopyFailedException ex)
        {
            Log.CopyFailed(logger, path, destination.Description, ex.Message);
            state.Hashes?.Dispose();
            return new CopyResult(CopyOutcome.Failed, state.Size ?? 0, null, null, null, ex.Message, state.Statistics(), ex.ContentMismatch);
        }
    }

    private async Task<CopyResult> StreamAsync(ICopyDestination destination, CopyState state, CancellationToken cancellationToken)
    {
        var settings = options.Value;

        // With several connections the first request asks for one block only: its answer tells the size,
        // the source's MD5, and whether the source honours Range (206) or ignores it (200, the whole file).
        var parallel = settings.DownloadConnections > 1;
        var source = await OpenWithRetriesAsync(state, cancellationToken, parallel ? (state.BlockSize > 0 ? state.BlockSize : settings.BlockSizeBytes) : null);
        if (parallel && !state.RangeIgnored && state.Size - state.Offset > state.BlockSize)
        {
            return await ParallelAsync(destination, state, source, cancellationToken);
        }

        if (source is not null && state.StreamEnd < state.Size - 1)
        {
            // One connection from here on: a stream to the end of the file, not just the probed block.
            source.Dispose();
            source = await OpenWithRetriesAsync(state, cancellationToken);
        }

        // Hashes run from byte 0: a fresh state, or the one this process kept when the previous slice ended here.
        state.Hashes = state.Offset == 0 ? new FileHashes(state.NewMultipartCheck()) : hashStates.TryTake(state.Request.CopyId, state.Offset);
        using var uploadsFailed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var concurrency = new SemaphoreSlim(settings.MaxConcurrency);
        var uploads = new List<Task>();
        Task hashing = Task.CompletedTask;
        try
        {
            while (state.Offset < state.Size!.Value && !uploadsFailed.IsCancellationRequested)
            {
                if (state.SliceExhausted(time))
                {
                    break;
                }

                var length = (int)Math.Min(state.BlockSize, state.Size.Value - state.Offset);
                var offset = state.Offset;
                var id = BlockIds.For(state.BlockSize, offset, state.Request.Generation);
                var lease = await budget.RentAsync(length, uploadsFailed.Token);
                try
                {
                    source = await ReadBlockAsync(state, source, lease.Buffer.AsMemory(0, length), uploadsFailed.Token);
                }
                catch
                {
                    lease.Dispose();
                    throw;
                }

                state.Advance(length);
                var previousHash = hashing;
                var hashes = state.Hashes;
                var data = lease.Buffer.AsMemory(0, length);
                hashing = hashes is null ? Task.CompletedTask : Task.Run(async () =>
                {
                    await previousHash;
                    hashes.AppendParallel(data);
                }, CancellationToken.None);

                if (state.Staged.TryGetValue(id, out var stagedSize) && stagedSize == length)
                {
                    state.BlocksSkipped++;
                    var blockHash = hashing;
                    uploads.Add(lease.DisposeAfterAsync(blockHash));
                    continue;
                }

                await concurrency.WaitAsync(uploadsFailed.Token);
                uploads.Add(UploadAsync(destination, state, id, offset, data, lease, hashing, concurrency, uploadsFailed));
            }
        }
        finally
        {
            source?.Dispose();
            try
            {
                await Task.WhenAll(uploads);
            }
            catch when (uploadsFailed.IsCancellationRequested)
            {
                // The first upload failure is rethrown below.
            }

            await hashing;
        }

        if (state.UploadError is { } uploadError)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(uploadError);
        }

        return await EndSliceAsync(destination, state, cancellationToken);
    }

    /// <summary>After a streamed slice: the continuation (the hash state kept in this process), or the commit when the file is all read.</summary>
    private async Task<CopyResult> EndSliceAsync(ICopyDestination destination, CopyState state, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (state.Offset < state.Size!.Value)
        {
            if (state.Hashes is { } partial)
            {
                hashStates.Put(state.Request.CopyId, state.Offset, partial);
            }

            Log.SliceDone(logger, state.Request.DestinationPath, state.Offset, state.Size.Value);
            return new CopyResult(CopyOutcome.Continue, state.Size.Value, null, null,
                new CopyContinuation(state.Offset, state.Size.Value, state.BlockSize, state.SourceMd5Hex, state.SourceMultipartEtag), null, state.Statistics());
        }

        return await CommitAsync(destination, state, cancellationToken);
    }

    private static partial class Log
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
}

/// <summary>The copy can never succeed as things stand (mismatch, source misbehaving, too many failures).</summary>
/// <summary>A copy that cannot succeed as it is; <see cref="ContentMismatch"/>: the bytes received were not the source's (a fresh copy may succeed).</summary>
public sealed class CopyFailedException(string message, bool contentMismatch = false) : Exception(message)
{
    public bool ContentMismatch { get; } = contentMismatch;
}
