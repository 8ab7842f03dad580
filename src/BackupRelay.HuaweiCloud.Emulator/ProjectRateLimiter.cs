namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// A token bucket per project: it holds one second's worth of requests and refills continuously, in
/// real time (the gateway does not follow the emulator's adjustable clock).
/// </summary>
public sealed class ProjectRateLimiter
{
    private readonly Dictionary<string, (double Tokens, long At)> _buckets = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Takes one request from the project's budget; false (and how long to wait) when it is spent.</summary>
    public bool TryTake(string project, double perSecond, out int retryAfterSeconds)
    {
        retryAfterSeconds = 0;
        if (perSecond <= 0)
        {
            return true;
        }

        lock (_gate)
        {
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            var (tokens, at) = _buckets.TryGetValue(project, out var bucket) ? bucket : (perSecond, now);
            tokens = Math.Min(perSecond, tokens + (System.Diagnostics.Stopwatch.GetElapsedTime(at, now).TotalSeconds * perSecond));
            if (tokens >= 1)
            {
                _buckets[project] = (tokens - 1, now);
                return true;
            }

            _buckets[project] = (tokens, now);
            retryAfterSeconds = 1;
            return false;
        }
    }
}
