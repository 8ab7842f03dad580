namespace BackupRelay.HuaweiCloud.Resilience;

/// <summary>
/// Which failures a call may be retried after. Retrying a POST after a timeout or a dropped
/// connection can repeat it; that is allowed only where the repeat is harmless or detectable.
/// </summary>
public enum RetryMode
{
    /// <summary>
    /// Any transient failure, timeouts and dropped connections included. For reads, deletes, IAM
    /// tokens, and POSTs whose repeat is harmless (export writes the same files).
    /// </summary>
    Always,

    /// <summary>
    /// Only failures where the service certainly did not act: 429 throttling at the gateway and
    /// refused connections. For add backup, import, graph start/stop and CSE restore, whose repeat would
    /// start a second long-running operation or hit a confusing state error. (Add backup once counted on
    /// <c>GES.7002</c> refusing a repeat; that holds only while the first backup still runs, and a small
    /// graph's backup can end before the repeat: its callers look for the backup the attempt started instead.)
    /// </summary>
    OnlyIfNotProcessed,
}

public static class RetryModes
{
    /// <summary>
    /// The retry mode of a request, from its method and path: reads and deletes are always
    /// retried; of the POSTs, only those whose repeat is harmless (export, IAM tokens). Any other
    /// POST — add backup, import, start, stop, CSE restore, and any added later — is retried only
    /// when the service certainly did not act.
    /// </summary>
    public static RetryMode For(HttpRequestMessage? request)
    {
        if (request is null || request.Method != HttpMethod.Post)
        {
            return RetryMode.Always;
        }

        var path = request.RequestUri?.AbsolutePath ?? "";
        return path.EndsWith("/backups/export", StringComparison.Ordinal)
            || path.EndsWith("/v3/auth/tokens", StringComparison.Ordinal)
            ? RetryMode.Always
            : RetryMode.OnlyIfNotProcessed;
    }
}
