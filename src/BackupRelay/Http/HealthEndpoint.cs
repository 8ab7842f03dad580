using BackupRelay.Freshness;
using BackupRelay.Storage;
using Microsoft.AspNetCore.Http;

namespace BackupRelay.Http;

/// <summary><c>GET /api/health</c> (anonymous): 200 healthy, starting or degraded (stale, unverified or restore-unproven graphs named), 503 unhealthy.</summary>
public sealed class HealthEndpoint(HealthProbe probe, GraphStatusService graphs)
{
    /// <summary>Storage and Huawei Cloud as last probed (shared, cached briefly; see <see cref="HealthProbe"/>).</summary>
    public async Task<IResult> HandleAsync()
    {
        var report = await probe.CheckAsync();

        // Stale graphs and graphs whose restore is unproven make the app "degraded": still 200, so a plain uptime probe sees the word and
        // the names, while a dependency outage stays 503. Bounded like the probes; the newest known
        // statuses serve when the run store is slow.
        IReadOnlyList<GraphStatus>? statuses;
        try
        {
            statuses = await graphs.GetAsync().WaitAsync(HealthProbe.ProbeTimeout);
        }
        catch (Exception ex) when (ex is TimeoutException || StorageErrors.Find(ex) is not null)
        {
            statuses = graphs.Latest;
        }

        var stale = statuses?.Where(g => g.State == FreshnessState.Stale).Select(g => g.GraphId).ToList() ?? [];
        var unproven = statuses?.Where(g => g.RestoreUnproven).Select(g => g.GraphId).ToList() ?? [];
        var tooSlow = statuses?.Where(g => g.RestoreTooSlow).Select(g => g.GraphId).ToList() ?? [];
        var unverified = statuses?.Where(g => g.UnverifiedCopy is not null).Select(g => g.GraphId).ToList() ?? [];
        var problems = new List<string>();
        if (stale.Count > 0)
        {
            problems.Add($"stale: {string.Join(", ", stale)}");
        }

        if (unverified.Count > 0)
        {
            problems.Add($"newest copy not verified: {string.Join(", ", unverified)}");
        }

        if (unproven.Count > 0)
        {
            problems.Add($"restore unproven: {string.Join(", ", unproven)}");
        }

        if (tooSlow.Count > 0)
        {
            problems.Add($"restore slower than its target: {string.Join(", ", tooSlow)}");
        }

        var body = new Dictionary<string, object?>
        {
            ["status"] = !report.Healthy ? "unhealthy" : problems.Count > 0 ? "degraded" : report.Starting ? "starting" : "healthy",
            ["storage"] = report.Storage ?? "ok",
            ["huaweiCloud"] = report.HuaweiCloud ?? (report.Starting ? "checking (first check since start-up)" : "ok"),
            ["destination"] = report.Destination ?? "ok",
            ["graphs"] = statuses is null ? "not evaluated yet" : problems.Count > 0 ? string.Join("; ", problems) : "ok",
            ["staleGraphs"] = stale,
            ["restoreUnprovenGraphs"] = unproven,
            ["restoreTooSlowGraphs"] = tooSlow,
            ["unverifiedGraphs"] = unverified,
            ["checkedAt"] = report.CheckedAt,
        };
        return Results.Json(body, statusCode: report.Healthy ? 200 : 503);
    }
}
