using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Storage;

namespace BackupRelay.Http;

/// <summary>What the last dependency probe found: null is fine, otherwise why not (never a secret).</summary>
/// <param name="Starting">
/// Huawei Cloud's first check since start-up (an IAM token to fetch first) has not answered yet: not a
/// fault, so not unhealthy, and not cached.
/// </param>
public sealed record HealthReport(string? Storage, string? HuaweiCloud, DateTimeOffset CheckedAt, string? Destination = null, bool Starting = false)
{
    public bool Healthy => Storage is null && HuaweiCloud is null && Destination is null;
}

/// <summary>
/// The dependency probes behind <c>GET /api/health</c>, which anyone may call: one probe at a time,
/// its result shared by every caller for <c>Http__HealthCacheDuration</c>, each dependency given
/// <see cref="ProbeTimeout"/>. So a flood of probes costs at most one GES call per cache period
/// plus one in flight — it cannot queue ahead of the pipeline's calls in the GES rate limiter —
/// and the answer comes within about <see cref="ProbeTimeout"/> when a dependency hangs.
/// On a cold start the first Huawei Cloud check also fetches an IAM token, which can take longer:
/// that check gets <see cref="FirstCheckTimeout"/>, probes answer "starting" (200) while it runs and
/// share it rather than start another, and only its outcome is reported and cached.
/// </summary>
public sealed class HealthProbe(WorkQueues queues, GesClient ges, Hosting.StartupChecks startup, Microsoft.Extensions.Options.IOptions<HttpOptions> options,
    TimeProvider time)
{
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1.5);

    /// <summary>Longest the first Huawei Cloud check since start-up (token included) may take before it counts as no answer.</summary>
    public static readonly TimeSpan FirstCheckTimeout = TimeSpan.FromSeconds(15);

    private readonly Lock _gate = new();
    private Task<HealthReport>? _current;
    private Task<string?>? _huaweiCall;
    private volatile bool _huaweiAnswered;

    public Task<HealthReport> CheckAsync()
    {
        lock (_gate)
        {
            if (_current is { } current
                && (!current.IsCompleted || (!current.Result.Starting && time.GetUtcNow() - current.Result.CheckedAt < options.Value.HealthCacheDuration)))
            {
                return current;
            }

            // Not tied to any caller's cancellation: the probe is shared.
            return _current = ProbeAsync();
        }
    }

    private async Task<HealthReport> ProbeAsync()
    {
        using var timeout = new CancellationTokenSource(ProbeTimeout, time);
        var storage = ProbeOneAsync(() => queues.Queue(QueueNames.StartBackup).GetPropertiesAsync(timeout.Token), ProbeTimeout, timeout.Token);
        var first = !_huaweiAnswered;
        var huaweiCall = HuaweiCall();
        string? huawei = null;
        var starting = false;
        if (!first)
        {
            huawei = await huaweiCall;
        }
        else
        {
            try
            {
                huawei = await huaweiCall.WaitAsync(ProbeTimeout, time);
            }
            catch (TimeoutException)
            {
                // The first check since start-up outlives the probe (its own timeout is longer): not a fault yet.
                starting = true;
            }
        }

        return new HealthReport(await storage, huawei, time.GetUtcNow(), startup.DestinationProblem, starting);
    }

    /// <summary>The Huawei Cloud check in flight, or a new one: the first since start-up with the longer timeout.</summary>
    private Task<string?> HuaweiCall()
    {
        lock (_gate)
        {
            if (_huaweiCall is { IsCompleted: false } running)
            {
                return running;
            }

            var limit = _huaweiAnswered ? ProbeTimeout : FirstCheckTimeout;
            return _huaweiCall = CallAsync(limit);
        }

        async Task<string?> CallAsync(TimeSpan limit)
        {
            using var timeout = new CancellationTokenSource(limit, time);
            var result = await ProbeOneAsync(() => ges.ListJobsAsync(null, 0, 1, timeout.Token), limit, timeout.Token);
            _huaweiAnswered = true;
            return result;
        }
    }

    private static async Task<string?> ProbeOneAsync(Func<Task> probe, TimeSpan limit, CancellationToken timeout)
    {
        try
        {
            await probe();
            return null;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return $"no answer within {limit.TotalSeconds:0.#} s";
        }
        catch (HuaweiCloudException ex)
        {
            return $"{ex.Kind}: {ex.ErrorCode} {ex.ErrorMessage}";
        }
        catch (Exception ex) when (StorageErrors.Find(ex) is { } storage)
        {
            return StorageErrors.Describe(storage);
        }
    }
}
