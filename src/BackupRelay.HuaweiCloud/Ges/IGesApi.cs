using Refit;

namespace BackupRelay.HuaweiCloud.Ges;

/// <summary>The GES v2 management calls BackupRelay makes (snake_case JSON). <see cref="GesClient"/> validates ids and pages.</summary>
public interface IGesApi
{
    [Post("/v2/{projectId}/graphs/{graphId}/backups")]
    Task<AddBackupResult> AddBackupAsync(string projectId, string graphId, [Body] EmptyBody body, CancellationToken cancellationToken);

    [Get("/v2/{projectId}/graphs/{graphId}/backups")]
    Task<GesBackupPage> ListBackupsAsync(string projectId, string graphId, int offset, int limit, CancellationToken cancellationToken);

    [Get("/v2/{projectId}/graphs/{graphId}/backup-files")]
    Task<GesBackupFiles> GetDownloadLinksAsync(string projectId, string graphId, [AliasAs("backup_id")] string backupId, CancellationToken cancellationToken);

    [Post("/v2/{projectId}/graphs/{graphId}/backups/import")]
    Task<JobIdResult> ImportBackupAsync(string projectId, string graphId, [Body] ImportBackupRequest body, CancellationToken cancellationToken);

    [Get("/v2/{projectId}/graphs/{graphId}")]
    Task<GesGraphResponse> GetGraphAsync(string projectId, string graphId, CancellationToken cancellationToken);

    [Get("/v2/{projectId}/graphs/{graphId}/jobs/{jobId}/status")]
    Task<GesJob> GetJobAsync(string projectId, string graphId, string jobId, CancellationToken cancellationToken);

    [Get("/v2/{projectId}/graphs/jobs")]
    Task<GesJobPage> ListJobsAsync(string projectId, int offset, int limit, string? status, [AliasAs("graph_name")] string? graphName,
        [AliasAs("start_time")] string? startTime, [AliasAs("end_time")] string? endTime, CancellationToken cancellationToken);
}
