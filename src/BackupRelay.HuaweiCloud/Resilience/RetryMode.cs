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

public static class HuaweiCloudRequestOptions
{
    public static readonly HttpRequestOptionsKey<RetryMode> Retry = new("BackupRelay.RetryMode");
}
