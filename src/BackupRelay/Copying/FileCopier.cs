using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Copying;

/// <summary>
/// Copies one file from a download link into a destination: streamed into blocks uploaded in
/// parallel under a process-wide memory budget, resumable from the blocks already staged, sliced
/// so one call never outlives its invocation, and verified (length, MD5, SHA-256, and the source's
/// own MD5 when it declares one) before anything looks complete.
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

    private async Task<CopyResult> CommitAsync(ICopyDestination destination, CopyState state, CancellationToken cancellationToken)
    {
        var path = state.Request.DestinationPath;
        var size = state.Size!.Value;
        var ids = new List<string>();
        for (long offset = 0; offset < size; offset += state.BlockSize)
        {
            ids.Add(BlockIds.For(state.BlockSize, offset, state.Request.Generation));
        }

        var metadata = new Dictionary<string, string>(state.Request.Metadata ?? new Dictionary<string, string>(), StringComparer.OrdinalIgnoreCase);
        if (state.Hashes is { } hashes && hashes.Length == size)
        {
            var (md5, sha256) = hashes.Finish();
            var parts = hashes.Multipart;
            var partSize = hashes.MatchedPartSize();
            hashes.Dispose();
            CheckSourceMd5(state, md5);
            CheckSourceMultipart(parts, partSize);
            var verification = metadata[CopyMetadata.Verification] = await VerifyAgainstSourceAsync(state, md5, partSize is not null, cancellationToken);
            await destination.CommitAsync(path, ids, new CommitInfo(size, md5, sha256, true, metadata), cancellationToken);
            LogCompleted(path, destination, size, verification, recomputed: false);
            return new CopyResult(CopyOutcome.Completed, size, Convert.ToHexStringLower(md5), Convert.ToHexStringLower(sha256), null, null, state.Statistics(),
                Verification: verification);
        }

        // The hash state of earlier slices is not here: commit unverified, hash what was committed, then verify.
        if (destination.WriteOnce)
        {
            throw new InvalidOperationException($"{path}: no hash state to commit with in write-once {destination.Description}; the copy is retried.");
        }

        // A duplicate delivery of this file (a redelivered slice beside its continuation) may have finished the
        // copy meanwhile: committing unverified over its verified file would mark a finished copy unverified.
        if (await destination.GetCommittedAsync(path, cancellationToken) is { Verified: true } done && done.Length == size)
        {
            return AlreadyComplete(destination, path, done, state.Statistics());
        }

        state.HashesRecomputed = true;
        await destination.CommitAsync(path, ids, new CommitInfo(size, null, null, false, metadata), cancellationToken);
        (byte[] Md5, byte[] Sha256, long Length, long? MultipartPartSize) read;
        var multipart = state.NewMultipartCheck();
        await using (var stream = await destination.OpenReadAsync(path, cancellationToken))
        {
            read = await FileHashes.OfStreamAsync(stream, multipart, cancellationToken);
        }

        try
        {
            if (read.Length != size)
            {
                throw new CopyFailedException($"The committed file has {read.Length} bytes; the source has {size}.", contentMismatch: true);
            }

            CheckSourceMd5(state, read.Md5);
            CheckSourceMultipart(multipart, read.MultipartPartSize);
            metadata[CopyMetadata.Verification] = await VerifyAgainstSourceAsync(state, read.Md5, read.MultipartPartSize is not null, cancellationToken);
        }
        catch (CopyFailedException)
        {
            try
            {
                await destination.DeleteAsync(path, cancellationToken);
            }
            catch (Azure.RequestFailedException ex) when (ex.Status is 403 or 409)
            {
                // The identity may not delete (write-only role, immutability): the file stays marked unverified.
                Log.CopyFailed(logger, path, destination.Description, $"the unverified file could not be deleted ({BackupRelay.Storage.StorageErrors.Describe(ex)}); it stays marked unverified");
            }

            throw;
        }

        await destination.MarkVerifiedAsync(path, read.Md5, read.Sha256, metadata, cancellationToken);
        LogCompleted(path, destination, size, metadata[CopyMetadata.Verification], recomputed: true);
        return new CopyResult(CopyOutcome.Completed, size, Convert.ToHexStringLower(read.Md5), Convert.ToHexStringLower(read.Sha256), null, null, state.Statistics(),
            Verification: metadata[CopyMetadata.Verification]);
    }

    /// <summary>The file is committed and verified already (an earlier or a duplicate delivery): its result as stored.</summary>
    private CopyResult AlreadyComplete(ICopyDestination destination, string path, CommittedFile committed, CopyStatistics statistics)
    {
        Log.AlreadyComplete(logger, path, destination.Description);
        return new CopyResult(CopyOutcome.Completed, committed.Length, committed.Md5Hex, committed.Sha256Hex, null, null, statistics,
            Verification: committed.Verification);
    }

    private void LogCompleted(string path, ICopyDestination destination, long size, string verification, bool recomputed)
    {
        if (verification == Verification.ReceivedOnly)
        {
            Log.CompletedUnverified(logger, path, destination.Description, size);
        }
        else
        {
            Log.Completed(logger, path, destination.Description, size, recomputed);
        }
    }

    /// <summary>
    /// What the copy can say beyond its own hashes: the source's declared MD5 was matched (checked
    /// already), or — opted in, for a source that declares none — a second full read hashes the same.
    /// </summary>
    private async Task<string> VerifyAgainstSourceAsync(CopyState state, byte[] md5, bool multipartMatched, CancellationToken cancellationToken)
    {
        if (state.SourceMd5Hex is not null)
        {
            return Verification.SourceMd5;
        }

        if (multipartMatched)
        {
            return Verification.SourceMultipartMd5;
        }

        if (state.Size == 0)
        {
            return Verification.EmptySource;
        }

        if (!options.Value.VerifyBySecondRead)
        {
            return Verification.ReceivedOnly;
        }

        var again = await SecondReadMd5Async(state, cancellationToken);
        if (!again.AsSpan().SequenceEqual(md5))
        {
            throw new CopyFailedException(
                $"A second read of the source hashes to MD5 {Convert.ToHexStringLower(again)}, the bytes copied to {Convert.ToHexStringLower(md5)}.",
                contentMismatch: true);
        }

        return Verification.SecondRead;
    }

    /// <summary>The MD5 of the whole source, read once more (a fresh link after a failure, a bounded number of times).</summary>
    private async Task<byte[]> SecondReadMd5Async(CopyState state, CancellationToken cancellationToken)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    using var response = await download.GetAsync(state.Link, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
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
                catch (Exception ex) when (ex is SourceFailedException or HttpRequestException or IOException && attempt < options.Value.MaxSourceAttempts)
                {
                    await RefreshLinkAsync(state, cancellationToken);
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The source's multipart ETag, when it was checked (hashed from byte 0), must be matched by one of the part sizes that fit.</summary>
    private static void CheckSourceMultipart(MultipartEtagCheck? check, long? partSize)
    {
        if (check is not null && partSize is null)
        {
            throw new CopyFailedException($"Multipart ETag mismatch: the source declares {check.Digest}-{check.Parts}; the bytes received give another " +
                $"for every part size that fits ({string.Join(", ", check.Candidates.Select(p => $"{p} B"))}).", contentMismatch: true);
        }
    }

    private static void CheckSourceMd5(CopyState state, byte[] md5)
    {
        if (state.SourceMd5Hex is { } expected && !string.Equals(expected, Convert.ToHexStringLower(md5), StringComparison.OrdinalIgnoreCase))
        {
            throw new CopyFailedException($"MD5 mismatch: the source declares {expected}, the bytes received hash to {Convert.ToHexStringLower(md5)}.", contentMismatch: true);
        }
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

    /// <summary>Mutable progress of one call.</summary>
    private sealed class CopyState
    {
        private readonly CopyOptions _settings;
        private readonly long _startedAt;
        private long _sliceBytes;

        public CopyState(CopyRequest request, IReadOnlyDictionary<string, long> staged, CopyOptions settings, long startedAt)
        {
            Request = request;
            Staged = staged;
            Link = request.SourceLink;
            _settings = settings;
            _startedAt = startedAt;
            if (request.Continuation is { } c)
            {
                Size = c.Size;
                BlockSize = c.BlockSize;
                SourceMd5Hex = c.SourceMd5Hex;
                SourceMultipartEtag = c.SourceMultipartEtag;
            }
            else
            {
                // Blocks left by an earlier attempt tell their block size.
                BlockSize = staged.Keys.Select(id => BlockIds.TryParse(id, out var size, out _, out var generation) && generation == request.Generation ? size : 0)
                    .FirstOrDefault(s => s > 0);
            }

            Offset = BlockSize > 0 ? FirstMissing(Size) : 0;
        }

        public CopyRequest Request { get; }
        public IReadOnlyDictionary<string, long> Staged { get; }
        public Uri Link { get; set; }
        public long? Size { get; private set; }
        public int BlockSize { get; private set; }
        public long Offset { get; private set; }
        public string? SourceMd5Hex { get; set; }

        /// <summary>The source's multipart ETag (<c>hex-N</c>), when it declares no plain MD5.</summary>
        public string? SourceMultipartEtag { get; set; }

        public FileHashes? Hashes { get; set; }

        /// <summary>A check of the source's multipart ETag for hashing from byte 0 (none when the source declares a plain MD5, or no usable ETag).</summary>
        public MultipartEtagCheck? NewMultipartCheck() => SourceMd5Hex is null ? MultipartEtagCheck.For(SourceMultipartEtag, Size) : null;
        public long BytesFromSource;
        public int ConsecutiveSourceFailures { get; set; }
        public int SourceRestarts;

        /// <summary>A request for a range was answered with the whole file: this source ignores Range.</summary>
        public bool RangeIgnored { get; set; }

        /// <summary>The last byte the open source stream covers (a bounded range, or the end of the file).</summary>
        public long StreamEnd { get; set; }
        public int BlocksSkipped { get; set; }
        public bool HashesRecomputed { get; set; }
        public int BlocksUploaded;
        public Exception? UploadError;

        /// <summary>Called once the source told its size: fixes the block size and the hash state.</summary>
        public void SetSize(long size, CopyOptions settings)
        {
            if (Size is not null)
            {
                return;
            }

            Size = size;
            if (BlockSize == 0 || (size + BlockSize - 1) / BlockSize > CopyOptions.MaxBlocks)
            {
                BlockSize = settings.BlockSizeFor(size);
                Offset = 0;
            }

            Offset = Math.Min(FirstMissing(size), size);
        }

        /// <summary>The first block not staged with its full length.</summary>
        private long FirstMissing(long? size)
        {
            long offset = 0;
            while (size is null || offset < size)
            {
                var expected = size is null ? BlockSize : Math.Min(BlockSize, size.Value - offset);
                if (!Staged.TryGetValue(BlockIds.For(BlockSize, offset, Request.Generation), out var staged) || staged != expected)
                {
                    break;
                }

                offset += BlockSize;
            }

            // Every block staged: the next byte is the end of the file, not past it (the last block is short).
            return size is { } known ? Math.Min(offset, known) : offset;
        }

        public void Advance(long bytes)
        {
            Offset += bytes;
            _sliceBytes += bytes;
        }

        /// <summary>The copy runs to the end of the file in this invocation (see <see cref="CopyAsync"/>).</summary>
        public bool Unsliced { get; init; }

        public bool SliceExhausted(TimeProvider time) => !Unsliced && (
            (_settings.SliceMaxBytes > 0 && _sliceBytes >= _settings.SliceMaxBytes)
            || time.GetElapsedTime(_startedAt) >= _settings.SliceMaxDuration);

        public CopyStatistics Statistics() =>
            new(BytesFromSource, BlocksUploaded, BlocksSkipped, SourceRestarts, HashesRecomputed, false);
    }

    private sealed class SourceFailedException(string message) : Exception(message);

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
