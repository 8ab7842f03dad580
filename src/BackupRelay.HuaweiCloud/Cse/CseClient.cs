using Microsoft.Extensions.Options;

namespace BackupRelay.HuaweiCloud.Cse;

/// <summary>
/// CSE engine restore, engine status and engine jobs, over Refit (<see cref="ICseRestoreApi"/>,
/// <see cref="ICseEngineApi"/>), with ids checked before they reach a URL.
/// </summary>
public sealed class CseClient(ICseRestoreApi restores, ICseEngineApi engines, IOptions<HuaweiCloudOptions> options)
{
    /// <summary>
    /// Restores an engine from a backup. Not retried after an ambiguous failure: a repeat is
    /// refused while the first restore runs (<see cref="HuaweiCloudErrorKind.Conflict"/>).
    /// </summary>
    public Task<CseRestoreRecord> RestoreAsync(string engineId, string backupId, string name, string? description = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var enterpriseProject = string.IsNullOrEmpty(options.Value.EnterpriseProjectId) ? null : options.Value.EnterpriseProjectId;
        return restores.RestoreAsync(HuaweiCloudIds.Id(engineId, nameof(engineId)), HuaweiCloudIds.Id(backupId, nameof(backupId)),
            new CseRestoreRequest(name, description), enterpriseProject, cancellationToken);
    }

    public Task<CseEngine> GetEngineAsync(string engineId, CancellationToken cancellationToken = default) =>
        engines.GetEngineAsync(Project, HuaweiCloudIds.Id(engineId, nameof(engineId)), cancellationToken);

    public Task<CseEngineJob> GetEngineJobAsync(string engineId, string jobId, CancellationToken cancellationToken = default) =>
        engines.GetEngineJobAsync(Project, HuaweiCloudIds.Id(engineId, nameof(engineId)), HuaweiCloudIds.Id(jobId, nameof(jobId)), cancellationToken);

    private string Project => HuaweiCloudIds.ProjectId(options.Value.ProjectId);
}
