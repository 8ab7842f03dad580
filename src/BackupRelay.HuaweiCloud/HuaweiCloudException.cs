using System.Net;

namespace BackupRelay.HuaweiCloud;

/// <summary>What a caller should do about a failed Huawei Cloud call.</summary>
public enum HuaweiCloudErrorKind
{
    /// <summary>Worth retrying later: 5xx, 408, engine unavailable, timeouts, dropped connections, open circuit.</summary>
    Transient,

    /// <summary>429: retry after <see cref="HuaweiCloudException.RetryAfter"/>.</summary>
    Throttled,

    /// <summary>401/403: credentials wrong, expired after one refresh, or not allowed.</summary>
    Auth,

    /// <summary>The resource is busy with the same operation (<c>GES.7002</c>: a backup is already running).</summary>
    Conflict,

    /// <summary>Graph, job, backup, engine or cluster does not exist.</summary>
    NotFound,

    /// <summary>The request can never succeed as sent (bad parameter, graph not running, ...).</summary>
    Invalid,
}

/// <summary>A failed Huawei Cloud call: HTTP status, service error code and message, request id.</summary>
public sealed class HuaweiCloudException : Exception
{
    public HuaweiCloudException(HuaweiCloudErrorKind kind, HttpStatusCode? status, string? errorCode, string errorMessage,
        string? requestId, TimeSpan? retryAfter = null, Exception? inner = null)
        : base(Describe(status, errorCode, errorMessage, requestId), inner)
    {
        Kind = kind;
        StatusCode = status;
        ErrorCode = errorCode;
        ErrorMessage = errorMessage;
        RequestId = requestId;
        RetryAfter = retryAfter;
    }

    public HuaweiCloudErrorKind Kind { get; }
    public HttpStatusCode? StatusCode { get; }
    public string? ErrorCode { get; }
    public string ErrorMessage { get; }
    public string? RequestId { get; }
    public TimeSpan? RetryAfter { get; }

    /// <summary>GES.7001 / 7003 / 7015: the graph is not running, stopping or stopped.</summary>
    public bool IsGraphNotRunning => ErrorCode is "GES.7001" or "GES.7003" or "GES.7015";

    private static string Describe(HttpStatusCode? status, string? code, string message, string? requestId) =>
        $"Huawei Cloud call failed: {(status is null ? "no response" : $"HTTP {(int)status.Value}")}"
        + (code is null ? "" : $" {code}") + $": {message}" + (requestId is null ? "" : $" (request id {requestId})");
}
