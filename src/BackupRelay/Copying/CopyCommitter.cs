using Microsoft.Extensions.Logging;

namespace BackupRelay.Copying;

/// <summary>
/// The destination's commit: the block list committed with the file's hashes, verified against the source's
/// own checksum (or a second read) before anything looks complete; when the hashes of earlier slices are not in
/// this process, the committed file is hashed back and verified, and deleted if it does not match.
/// </summary>
internal sealed class CopyCommitter(CopyOptions options, ILogger logger)
{
    public async Task<CopyResult> CommitAsync(ICopyDestination destination, CopyState state, CopySource source, CancellationToken cancellationToken)
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
            var verification = metadata[CopyMetadata.Verification] = await VerifyAgainstSourceAsync(state, source, md5, partSize is not null, cancellationToken);
            await destination.CommitAsync(path, ids, new CommitInfo(size, md5, sha256, true, metadata), cancellationToken);
            LogCompleted(path, destination, size, verification, recomputed: false);
            return new CopyResult(CopyOutcome.Completed, size, md5 is null ? null : Convert.ToHexStringLower(md5), Convert.ToHexStringLower(sha256), null, null,
                state.Statistics(), Verification: verification, VerificationNote: UncheckedBecause(state, verification));
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
            metadata[CopyMetadata.Verification] = await VerifyAgainstSourceAsync(state, source, read.Md5, read.MultipartPartSize is not null, cancellationToken);
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
                CopyLog.CopyFailed(logger, path, destination.Description, $"the unverified file could not be deleted ({BackupRelay.Storage.StorageErrors.Describe(ex)}); it stays marked unverified");
            }

            throw;
        }

        await destination.MarkVerifiedAsync(path, read.Md5, read.Sha256, metadata, cancellationToken);
        LogCompleted(path, destination, size, metadata[CopyMetadata.Verification], recomputed: true);
        return new CopyResult(CopyOutcome.Completed, size, Convert.ToHexStringLower(read.Md5), Convert.ToHexStringLower(read.Sha256), null, null, state.Statistics(),
            Verification: metadata[CopyMetadata.Verification], VerificationNote: UncheckedBecause(state, metadata[CopyMetadata.Verification]));
    }

    /// <summary>The file is committed and verified already (an earlier or a duplicate delivery): its result as stored.</summary>
    public CopyResult AlreadyComplete(ICopyDestination destination, string path, CommittedFile committed, CopyStatistics statistics)
    {
        CopyLog.AlreadyComplete(logger, path, destination.Description);
        return new CopyResult(CopyOutcome.Completed, committed.Length, committed.Md5Hex, committed.Sha256Hex, null, null, statistics,
            Verification: committed.Verification);
    }

    /// <summary>Why a file could not be checked against its source (null when it was): what its run record and its copy's level say.</summary>
    private static string? UncheckedBecause(CopyState state, string verification) => verification switch
    {
        Verification.ReceivedOnly when state.SourceEncryption is { } sse =>
            $"the source object is encrypted at rest ({sse}): its ETag is not an MD5 of its bytes, and it declared no other checksum",
        Verification.ReceivedOnly => "the source declared no checksum",
        Verification.SecondRead => "the source declared no checksum; a second full read of it hashed the same",
        _ => null,
    };

    private void LogCompleted(string path, ICopyDestination destination, long size, string verification, bool recomputed)
    {
        if (verification == Verification.ReceivedOnly)
        {
            CopyLog.CompletedUnverified(logger, path, destination.Description, size);
        }
        else
        {
            CopyLog.Completed(logger, path, destination.Description, size, recomputed);
        }
    }

    /// <summary>
    /// What the copy can say beyond its own hashes: the source's declared MD5 was matched (checked
    /// already), or — opted in, for a source that declares none — a second full read hashes the same.
    /// </summary>
    private async Task<string> VerifyAgainstSourceAsync(CopyState state, CopySource source, byte[]? md5, bool multipartMatched, CancellationToken cancellationToken)
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

        if (!options.VerifyBySecondRead)
        {
            return Verification.ReceivedOnly;
        }

        // No multipart check proved the copy, so its hashes include the whole-file MD5 (CopyState.NewHashes).
        if (md5 is null)
        {
            throw new InvalidOperationException("A copy without a multipart check hashes the whole file's MD5.");
        }

        var again = await source.SecondReadMd5Async(cancellationToken);
        if (!again.AsSpan().SequenceEqual(md5))
        {
            throw new CopyFailedException(
                $"A second read of the source hashes to MD5 {Convert.ToHexStringLower(again)}, the bytes copied to {Convert.ToHexStringLower(md5)}.",
                contentMismatch: true);
        }

        return Verification.SecondRead;
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

    private static void CheckSourceMd5(CopyState state, byte[]? md5)
    {
        if (state.SourceMd5Hex is { } expected && (md5 is null || !string.Equals(expected, Convert.ToHexStringLower(md5), StringComparison.OrdinalIgnoreCase)))
        {
            throw new CopyFailedException($"MD5 mismatch: the source declares {expected}, the bytes received hash to {(md5 is null ? "(not hashed)" : Convert.ToHexStringLower(md5))}.",
                contentMismatch: true);
        }
    }
}
