using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;

namespace BackupRelay.Storage;

/// <summary>How a conditional write ended.</summary>
public enum WriteOutcome
{
    Written,

    /// <summary>412: <c>If-Match</c> saw another ETag, or <c>If-None-Match: *</c> found the blob.</summary>
    PreconditionFailed,

    /// <summary>409: the blob already exists (<c>If-None-Match: *</c>), or is leased.</summary>
    Conflict,
}

public sealed record WriteResult(WriteOutcome Outcome, ETag? ETag)
{
    public bool Succeeded => Outcome == WriteOutcome.Written;
}

/// <summary>
/// Conditional writes as outcomes rather than exceptions: a lost ETag race is the expected path of
/// the run store, not an error. Everything else the SDK throws is left as it is.
/// </summary>
public static class BlobWrites
{
    public static Task<WriteResult> UploadAsync(BlobClient blob, BinaryData content, BlobUploadOptions options,
        CancellationToken cancellationToken = default) =>
        OutcomeAsync(async () => (await blob.UploadAsync(content, options, cancellationToken)).Value.ETag);

    public static Task<WriteResult> CommitBlockListAsync(BlockBlobClient blob, IEnumerable<string> base64BlockIds, CommitBlockListOptions options,
        CancellationToken cancellationToken = default) =>
        OutcomeAsync(async () => (await blob.CommitBlockListAsync(base64BlockIds, options, cancellationToken)).Value.ETag);

    /// <summary><c>If-None-Match: *</c>: write only if no blob exists.</summary>
    public static BlobRequestConditions IfNotExists() => new() { IfNoneMatch = ETag.All };

    public static BlobRequestConditions IfMatch(ETag etag) => new() { IfMatch = etag };

    private static async Task<WriteResult> OutcomeAsync(Func<Task<ETag>> write)
    {
        try
        {
            return new WriteResult(WriteOutcome.Written, await write());
        }
        catch (RequestFailedException ex) when (ex.Status == 412)
        {
            return new WriteResult(WriteOutcome.PreconditionFailed, null);
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
            return new WriteResult(WriteOutcome.Conflict, null);
        }
    }
}

/// <summary>Short, secret-free descriptions of storage failures for logs, run records and problem details.</summary>
public static class StorageErrors
{
    /// <summary>
    /// "HTTP 403 AuthorizationPermissionMismatch" — not the SDK's message, which lists every header and
    /// the response body over many lines.
    /// </summary>
    public static string Describe(RequestFailedException exception) =>
        exception.Status == 0
            ? $"storage could not be reached ({exception.InnerException?.GetType().Name ?? "no response"})"
            : $"HTTP {exception.Status} {ErrorCode(exception) ?? "(no error code)"}";

    /// <summary>A storage failure described as above; any other exception by its type (its message may be long or carry a URL).</summary>
    public static string Describe(Exception exception) =>
        Find(exception) is { } storage ? Describe(storage) : exception.GetType().Name;

    /// <summary>The service's error code: from the error body, else the <c>x-ms-error-code</c> header (HEAD answers have no body).</summary>
    public static string? ErrorCode(RequestFailedException exception) =>
        exception.ErrorCode
        ?? (exception.GetRawResponse()?.Headers.TryGetValue("x-ms-error-code", out var code) == true ? code : null);

    public static bool IsNotFound(RequestFailedException exception) => exception.Status == 404;

    /// <summary>
    /// The storage failure behind <paramref name="exception"/>: itself, or what the SDK's retries
    /// wrapped in an <see cref="AggregateException"/> when every attempt failed without an answer.
    /// </summary>
    public static RequestFailedException? Find(Exception? exception) => exception switch
    {
        RequestFailedException storage => storage,
        AggregateException aggregate => aggregate.InnerExceptions.Select(Find).LastOrDefault(e => e is not null),
        _ => null,
    };
}
