namespace BackupRelay.HuaweiCloud.Resilience;

/// <summary>
/// Which failures a call may be retried after. Retrying a POST after a timeout or a dropped
/// connection can repeat it; that is allowed only where the repeat is harmless or detectable.
/// </summary>
public enum RetryMode
{
    /// <summary>
    /// Any transient failure, timeouts and dropped connections included. For reads, deletes, IAM
    /// tokens, and POSTs whose repeat is harmless (export writes the same files) or detectable
    /// (add backup: a second attempt is refused with <c>GES.7002</c>, which callers treat as
    /// "adopt the running backup").
    /// </summary>
    Always,

    /// <summary>
    /// Only failures where the service certainly did not act: 429 throttling at the gateway and
    /// refused connections. For import, graph start/stop and CSE restore, whose repeat would
    /// start a second long-running operation or hit a confusing state error.
    /// </summary>
    OnlyIfNotProcessed,
}

public static class RetryModes
{
    /// <summary>
    /// The retry mode of a request, from its method and path: reads and deletes are always
    /// retried; of the POSTs, only those whose repeat is harmless or detected (add backup, export,
    /// IAM tokens). Any other POST — import, start, stop, CSE restore, and any added later — is
    /// retried only when the service certainly did not act.
    /// </summary>
    public static RetryMode For(HttpRequestMessage? request)
    {
        if (request is null || request.Method != HttpMethod.Post)
        {
            return RetryMode.Always;
        }

        var path = request.RequestUri?.AbsolutePath ?? "";
        return path.EndsWith("/backups", StringComparison.Ordinal)
            || path.EndsWith("/backups/export", StringComparison.Ordinal)
            || path.EndsWith("/v3/auth/tokens", StringComparison.Ordinal)
            ? RetryMode.Always
            : RetryMode.OnlyIfNotProcessed;
    }
}
