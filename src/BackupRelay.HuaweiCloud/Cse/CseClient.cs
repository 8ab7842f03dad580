using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.HuaweiCloud.Json;
using BackupRelay.HuaweiCloud.Resilience;
using Microsoft.Extensions.Options;

namespace BackupRelay.HuaweiCloud.Cse;

/// <summary>CSE engine restore, engine status and engine jobs.</summary>
public sealed class CseClient(HttpClient http, IOptions<HuaweiCloudOptions> options, TimeProvider time)
    : HuaweiCloudClientBase(http, time)
{
    /// <summary>
    /// Restores an engine from a backup. Not retried after an ambiguous failure: a repeat is
    /// refused while the first restore runs (<see cref="HuaweiCloudErrorKind.Conflict"/>).
    /// </summary>
    public Task<CseRestoreRecord> RestoreAsync(string engineId, string backupId, string name, string? description = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var path = $"cseengine/v1/engines/{HuaweiCloudIds.Id(engineId, nameof(engineId))}/backups/{HuaweiCloudIds.Id(backupId, nameof(backupId))}/recovery";
        return SendAsync(HttpMethod.Post, path, new CseRestoreRequest(name, description), HuaweiCamelJson.Default.CseRestoreRequest,
            HuaweiCamelJson.Default.CseRestoreRecord, RetryMode.OnlyIfNotProcessed, request =>
            {
                request.Content!.Headers.ContentType = new("application/json") { CharSet = "UTF-8" };
                if (!string.IsNullOrEmpty(options.Value.EnterpriseProjectId))
                {
                    request.Headers.TryAddWithoutValidation("X-Enterprise-Project-ID", options.Value.EnterpriseProjectId);
                }
            }, cancellationToken);
    }

    public Task<CseEngine> GetEngineAsync(string engineId, CancellationToken cancellationToken = default) =>
        SendAsync<EmptyBody, CseEngine>(HttpMethod.Get, $"{Engines}/{HuaweiCloudIds.Id(engineId, nameof(engineId))}",
            null, null, HuaweiSnakeJson.Default.CseEngine, RetryMode.Always, null, cancellationToken);

    public Task<CseEngineJob> GetEngineJobAsync(string engineId, string jobId, CancellationToken cancellationToken = default) =>
        SendAsync<EmptyBody, CseEngineJob>(HttpMethod.Get,
            $"{Engines}/{HuaweiCloudIds.Id(engineId, nameof(engineId))}/jobs/{HuaweiCloudIds.Id(jobId, nameof(jobId))}",
            null, null, HuaweiSnakeJson.Default.CseEngineJob, RetryMode.Always, null, cancellationToken);

    private string Engines => $"v2/{HuaweiCloudIds.ProjectId(options.Value.ProjectId)}/enginemgr/engines";
}
