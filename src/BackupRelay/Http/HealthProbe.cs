using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Storage;

namespace BackupRelay.Http;

/// <summary>What the last dependency probe found: null is fine, otherwise why not (never a secret).</summary>
public sealed record HealthReport(string? Storage, string? HuaweiCloud, DateTimeOffset CheckedAt, string? Destination = null)
{
    public bool Healthy => Storage is null && HuaweiCloud is null && Destination is null;
}

/// <summary>
/// The dependency probes behind <c>GET /api/health</c>, which anyone may call: one probe at a time,
/// its result shared by every caller for <c>Http__HealthCacheDuration</c>, each dependency given
/// <see cref="ProbeTimeout"/>. So a flood of probes costs at most one GES call per cache period
/// plus one per probe in flight — it cannot queue ahead of the pipeline's calls in the GES rate limiter —
/// and the answer comes within about <see cref="ProbeTimeout"/> when a dependency hangs.
/// </summary>
public sealed class HealthProbe(WorkQueues queues, GesClient ges, Hosting.StartupChecks startup, Microsoft.Extensions.Options.IOptions<HttpOptions> options,
    TimeProvider time)
{
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1.5);

    private readonly Lock _gate = new();
    private Task<HealthReport>? _current;

    public Task<HealthReport> CheckAsync()
    {
        lock (_gate)
        {
            if (_current is { } current && (!current.IsCompleted || time.GetUtcNow() - current.Result.CheckedAt < options.Value.HealthCacheDuration))
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
        var storage = ProbeOneAsync(() => queues.Queue(QueueNames.StartBackup).GetPropertiesAsync(timeout.Token), timeout.Token);
        var huawei = ProbeOneAsync(() => ges.ListJobsAsync(null, 0, 1, timeout.Token), timeout.Token);
        return new HealthReport(await storage, await huawei, time.GetUtcNow(), startup.DestinationProblem);
    }

    private static async Task<string?> ProbeOneAsync(Func<Task> probe, CancellationToken timeout)
    {
        try
        {
            await probe();
            return null;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return $"no answer within {ProbeTimeout.TotalSeconds:0.#} s";
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
