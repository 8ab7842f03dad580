using System.Net;

namespace BackupRelay.Storage;

/// <summary>A failed storage call, with the service's error code (<c>x-ms-error-code</c>).</summary>
public sealed class StorageException(HttpStatusCode? status, string? errorCode, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public HttpStatusCode? Status { get; } = status;
    public string? ErrorCode { get; } = errorCode;
}

/// <summary>How a conditional write ended.</summary>
public enum WriteOutcome
{
    Written,

    /// <summary>412: <c>If-Match</c> saw another ETag, or <c>If-None-Match: *</c> found the blob.</summary>
    PreconditionFailed,

    /// <summary>409: the blob or container already exists, or is leased.</summary>
    Conflict,
}

public sealed record WriteResult(WriteOutcome Outcome, string? ETag)
{
    public bool Succeeded => Outcome == WriteOutcome.Written;
}
