using Refit;

namespace BackupRelay.HuaweiCloud.Cse;

/// <summary>CSE engine restore (camelCase JSON, as its API page documents).</summary>
public interface ICseRestoreApi
{
    // Content-Type (application/json; charset=utf-8, from the body) and Accept are mandatory (seed page 004).
    [Post("/cseengine/v1/engines/{engineId}/backups/{backupId}/recovery")]
    [Headers("Accept: application/json")]
    Task<CseRestoreRecord> RestoreAsync(string engineId, string backupId, [Body] CseRestoreRequest body,
        [Header("X-Enterprise-Project-ID")] string? enterpriseProjectId, CancellationToken cancellationToken);
}

/// <summary>CSE engine manager reads (snake_case JSON).</summary>
public interface ICseEngineApi
{
    [Get("/v2/{projectId}/enginemgr/engines/{engineId}")]
    Task<CseEngine> GetEngineAsync(string projectId, string engineId, CancellationToken cancellationToken);

    [Get("/v2/{projectId}/enginemgr/engines/{engineId}/jobs/{jobId}")]
    Task<CseEngineJob> GetEngineJobAsync(string projectId, string engineId, string jobId, CancellationToken cancellationToken);
}
