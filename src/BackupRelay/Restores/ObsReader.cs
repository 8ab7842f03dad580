using BackupRelay.Copying;
using Microsoft.Extensions.Options;

namespace BackupRelay.Restores;

/// <summary>One object of a drill to read back from OBS, from <paramref name="Offset"/> (0 for the first slice).</summary>
public sealed record ReadBackRequest(string RunId, string File, string Bucket, string Key, long Size, long Offset);

/// <summary>
/// A slice of a read-back: <see cref="Served"/> once every byte was read (its length and hashes), else the offset the
/// next slice starts at; or <see cref="Problem"/>, why the object cannot be what the copy was (absent, another length).
/// </summary>
public sealed record ReadBackResult(long Offset, ObsReadBack? Served, string? Problem);

/// <summary>
/// A restore drill's read-back: what OBS holds after the upload, read back and hashed (SHA-256, in file order) to be
/// compared with what the copy recorded. Ranged GETs of <see cref="RangeBytes"/> run in
/// parallel (<c>Obs__MaxConcurrency</c> at once, buffers from the process-wide budget), and the read is sliced like an
/// upload (<c>Copy__SliceMaxBytes</c>, <c>Copy__SliceMaxDuration</c>): the hash state waits in this process for the
/// next slice, so no object is too large to read back within <c>functionTimeout</c>. A slice that lands on another
/// instance (no hash state there) reads again from byte 0.
/// </summary>
public sealed class ObsReader(ObsClient obs, CopyBufferBudget budget, HashStateCache hashStates, IOptions<ObsOptions> obsOptions,
    IOptions<CopyOptions> copyOptions, TimeProvider time)
{
    /// <summary>Bytes one ranged GET asks for (8 MiB; tests ask for less, to cross many ranges with small objects).</summary>
    internal int RangeBytes { get; init; } = 8 * 1024 * 1024;

    public async Task<ReadBackResult> ReadAsync(ReadBackRequest request, CancellationToken cancellationToken)
    {
        var stateKey = $"readback/{request.RunId}/{request.File}";
        var kept = request.Offset > 0 ? hashStates.TryTake(stateKey, request.Offset) : null;
        var offset = kept is null ? 0 : request.Offset;
        if (kept is null)
        {
            var found = await obs.HeadAsync(request.Bucket, request.Key, cancellationToken);
            if (found is null || found.Length != request.Size)
            {
                return new ReadBackResult(0, null, found is null
                    ? "OBS has no such object when it is read back after its upload"
                    : $"read back from OBS it is {found.Length} bytes; the copy recorded {request.Size}");
            }
        }

        var hashes = kept ?? FileHashes.Sha256Only();
        var started = time.GetTimestamp();
        var read = 0L;
        using var connections = new SemaphoreSlim(obsOptions.Value.MaxConcurrency);
        using var pipeline = new BlockPipeline(budget, hashes, obsOptions.Value.MaxConcurrency, cancellationToken);
        try
        {
            await pipeline.RunAsync(async () =>
            {
                while (offset < request.Size && !pipeline.Stopped && !(read > 0 && SliceExhausted(read, started)))
                {
                    var length = (int)Math.Min(RangeBytes, request.Size - offset);
                    var lease = await pipeline.RentAsync(length);
                    pipeline.Add(lease, length, ReadRangeAsync(request, offset, lease.Buffer.AsMemory(0, length), connections, pipeline.Token), send: null);
                    offset += length;
                    read += length;
                }
            });
        }
        catch
        {
            hashes.Dispose();
            throw;
        }

        if (pipeline.Error is { } error)
        {
            hashes.Dispose();
            if (error is InvalidDataException shorter)
            {
                return new ReadBackResult(0, null, shorter.Message);
            }

            pipeline.ThrowIfFailed();
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (offset < request.Size)
        {
            hashStates.Put(stateKey, offset, hashes);
            return new ReadBackResult(offset, null, null);
        }

        var (_, sha256) = hashes.Finish();
        hashes.Dispose();
        return new ReadBackResult(offset, new ObsReadBack(request.Size, Convert.ToHexStringLower(sha256)), null);
    }

    private async Task ReadRangeAsync(ReadBackRequest request, long offset, Memory<byte> buffer, SemaphoreSlim connections, CancellationToken cancellationToken)
    {
        await connections.WaitAsync(cancellationToken);
        try
        {
            var served = await obs.ReadRangeAsync(request.Bucket, request.Key, offset, buffer, cancellationToken);
            if (served < buffer.Length)
            {
                throw new InvalidDataException($"read back from OBS it ends at byte {offset + served}; the copy recorded {request.Size}");
            }
        }
        finally
        {
            connections.Release();
        }
    }

    private bool SliceExhausted(long bytes, long started) => copyOptions.Value.SliceEnded(bytes, time.GetElapsedTime(started));
}
