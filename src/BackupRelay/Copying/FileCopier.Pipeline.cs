namespace BackupRelay.Copying;

/// <summary>
/// The block pipeline: ranged fetches in parallel under the process-wide buffer budget, hashed in order, staged as
/// blocks (or copied server-side from the link), the first failure stopping the rest.
/// </summary>
public sealed partial class FileCopier
{
    /// <summary>
    /// One file over several ranged connections (<c>Copy__DownloadConnections</c>): each block is its own
    /// <c>Range</c> request, fetched while others are; blocks are staged as they arrive, and MD5 and
    /// SHA-256 still run over the file in order. Every block holds a buffer from the process-wide budget
    /// from before its request until it is hashed and staged, so however slow one range is, the blocks
    /// waiting behind it for the hashes never take more than the budget: memory stays bounded whatever
    /// the file size. A range that fails is retried alone; an expired link is refreshed once, and every
    /// range switches to the new one.
    /// </summary>
    private async Task<CopyResult> ParallelAsync(ICopyDestination destination, CopyState state, SourceStream? probe, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        state.Hashes = state.Offset == 0 ? new FileHashes(state.NewMultipartCheck()) : hashStates.TryTake(state.Request.CopyId, state.Offset);
        var links = new LinkKeeper(state);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var connections = new SemaphoreSlim(settings.DownloadConnections);
        using var uploadSlots = new SemaphoreSlim(settings.MaxConcurrency);
        var blocks = new List<Task>();
        var hashing = Task.CompletedTask;
        var probeStart = state.Offset;
        try
        {
            while (state.Offset < state.Size!.Value && !failed.IsCancellationRequested)
            {
                if (state.SliceExhausted(time))
                {
                    break;
                }

                var length = (int)Math.Min(state.BlockSize, state.Size.Value - state.Offset);
                var offset = state.Offset;
                var id = BlockIds.For(state.BlockSize, offset, state.Request.Generation);
                var lease = await budget.RentAsync(length, failed.Token);
                try
                {
                    await connections.WaitAsync(failed.Token);
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
                var data = lease.Buffer.AsMemory(0, length);
                var fetch = FetchAsync(state, links, offset, data, opened, connections, failed.Token);
                var previous = hashing;
                var hashes = state.Hashes;
                hashing = Task.Run(async () =>
                {
                    await previous;
                    await fetch;
                    hashes?.AppendParallel(data);
                }, CancellationToken.None);
                var alreadyStaged = state.Staged.TryGetValue(id, out var stagedSize) && stagedSize == length;
                if (alreadyStaged)
                {
                    state.BlocksSkipped++;
                }

                blocks.Add(StageWhenFetchedAsync(destination, state, id, offset, data, lease, fetch, hashing, alreadyStaged, uploadSlots, failed));
            }
        }
        catch (OperationCanceledException) when (state.UploadError is not null && !cancellationToken.IsCancellationRequested)
        {
            // A block failed while this loop waited for a buffer or a connection: that failure is thrown below.
        }
        finally
        {
            probe?.Dispose();
            try
            {
                await Task.WhenAll(blocks);
            }
            catch when (failed.IsCancellationRequested)
            {
                // The first failure is rethrown below.
            }

            try
            {
                await hashing;
            }
            catch when (state.UploadError is not null || cancellationToken.IsCancellationRequested)
            {
                // A block that was never fetched is never hashed; its failure is the one reported.
            }
        }

        if (state.UploadError is { } error)
        {
            state.Hashes?.Dispose();
            state.Hashes = null;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }

        return await EndSliceAsync(destination, state, cancellationToken);
    }

    /// <summary>Stages a block once its range arrived (unless an earlier attempt staged it), then frees its buffer after its hash.</summary>
    private async Task StageWhenFetchedAsync(ICopyDestination destination, CopyState state, string id, long offset, ReadOnlyMemory<byte> data,
        CopyBufferBudget.Lease lease, Task fetch, Task hashing, bool alreadyStaged, SemaphoreSlim uploadSlots, CancellationTokenSource failed)
    {
        try
        {
            await fetch;
            if (!alreadyStaged)
            {
                await uploadSlots.WaitAsync(failed.Token);
                try
                {
                    await StageAsync(destination, state, id, offset, data, failed.Token);
                }
                finally
                {
                    uploadSlots.Release();
                }
            }

            await hashing;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !failed.IsCancellationRequested)
        {
            await FailFirstAsync(state, ex, failed);
        }
        catch (OperationCanceledException)
        {
            // Another block failed first.
        }
        finally
        {
            lease.Dispose();
        }
    }

    /// <summary>
    /// Fetches one block with its own <c>Range</c> request (or from the already open probe), retried
    /// alone after a drop, a short read or an error answer, at most <c>Copy__MaxSourceAttempts</c> times.
    /// </summary>
    private async Task FetchAsync(CopyState state, LinkKeeper links, long offset, Memory<byte> block, SourceStream? opened, SemaphoreSlim connections,
        CancellationToken cancellationToken)
    {
        try
        {
            for (var failures = 0; ;)
            {
                var link = links.Current;
                var source = opened;
                opened = null;
                try
                {
                    source ??= await OpenRangeAsync(state, link, offset, block.Length, cancellationToken);
                    var read = await source.Stream.ReadAtLeastAsync(block, block.Length, throwOnEndOfStream: false, cancellationToken);
                    if (read < block.Length)
                    {
                        throw new SourceFailedException($"The range at {offset} ended after {read} of {block.Length} bytes.");
                    }

                    Interlocked.Add(ref state.BytesFromSource, read);
                    return;
                }
                catch (Exception ex) when (ex is SourceFailedException or IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
                {
                    Interlocked.Increment(ref state.SourceRestarts);
                    if (++failures >= options.Value.MaxSourceAttempts)
                    {
                        throw new CopyFailedException($"The source failed {failures} times in a row at offset {offset}: {ex.Message}");
                    }

                    Log.SourceRestart(logger, state.Request.DestinationPath, offset, ex.Message);
                    await links.RefreshAsync(link, cancellationToken);
                }
                finally
                {
                    source?.Dispose();
                }
            }
        }
        finally
        {
            connections.Release();
        }
    }

    private async Task UploadAsync(ICopyDestination destination, CopyState state, string id, long offset, ReadOnlyMemory<byte> data,
        CopyBufferBudget.Lease lease, Task hashing, SemaphoreSlim concurrency, CancellationTokenSource failed)
    {
        try
        {
            await StageAsync(destination, state, id, offset, data, failed.Token);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !failed.IsCancellationRequested)
        {
            await FailFirstAsync(state, ex, failed);
        }
        catch (OperationCanceledException)
        {
            // Another upload failed first.
        }
        finally
        {
            concurrency.Release();
            await lease.DisposeAfterAsync(hashing);
        }
    }

    /// <summary>Stages one block (with its MD5 for the destination to check, when <c>Copy__BlockContentMd5</c>).</summary>
    private async Task StageAsync(ICopyDestination destination, CopyState state, string id, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var md5 = options.Value.BlockContentMd5 ? System.Security.Cryptography.MD5.HashData(data.Span) : null;
        await destination.StageBlockAsync(state.Request.DestinationPath, id, offset, data, md5, cancellationToken);
        Interlocked.Increment(ref state.BlocksUploaded);
    }

    /// <summary>Keeps the first failure of a slice's concurrent work (rethrown when the slice ends) and stops the rest.</summary>
    private static Task FailFirstAsync(CopyState state, Exception failure, CancellationTokenSource failed)
    {
        Interlocked.CompareExchange(ref state.UploadError, failure, null);
        return failed.CancelAsync();
    }

    private async Task<CopyResult> ServerSideAsync(ICopyDestination destination, CopyState state, CancellationToken cancellationToken)
    {
        using (var probe = await OpenWithRetriesAsync(state, cancellationToken))
        {
            // Only the size and the source's MD5 were wanted.
        }

        var settings = options.Value;
        using var concurrency = new SemaphoreSlim(settings.MaxConcurrency);
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
                    await StageFromUrlWithRefreshAsync(destination, state, id, offset, length, cancellationToken);
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
        if (state.Offset < state.Size.Value)
        {
            return new CopyResult(CopyOutcome.Continue, state.Size.Value, null, null,
                new CopyContinuation(state.Offset, state.Size.Value, state.BlockSize, state.SourceMd5Hex, state.SourceMultipartEtag), null, state.Statistics());
        }

        return await CommitAsync(destination, state, cancellationToken);
    }

    private async Task StageFromUrlWithRefreshAsync(ICopyDestination destination, CopyState state, string id, long offset, long length,
        CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await destination.StageBlockFromUrlAsync(state.Request.DestinationPath, id, state.Link, offset, length, cancellationToken);
                Interlocked.Increment(ref state.BlocksUploaded);
                return;
            }
            catch (Azure.RequestFailedException ex) when (attempt < options.Value.MaxSourceAttempts && ex.Status is > 0 and < 500)
            {
                Log.SourceRestart(logger, state.Request.DestinationPath, offset, BackupRelay.Storage.StorageErrors.Describe(ex));
                await RefreshLinkAsync(state, cancellationToken);
            }
        }
    }
}
