using System.Globalization;
using Microsoft.Extensions.Options;

namespace BackupRelay.HuaweiCloud.Ges;

/// <summary>
/// GES v2 management calls used by BackupRelay: backups, download links, import/export, graph
/// start/stop, jobs. The calls are Refit's (<see cref="IGesApi"/>); this adds what the project
/// needs on top: ids checked before they reach a URL, the project id from settings, and paging.
/// Every failure is a <see cref="HuaweiCloudException"/>.
/// </summary>
public sealed class GesClient(IGesApi api, IOptions<HuaweiCloudOptions> options)
{
    /// <summary>Page size used when reading every backup of a graph.</summary>
    public const int ListPageSize = 100;

    private string Project => HuaweiCloudIds.ProjectId(options.Value.ProjectId);

    /// <summary>Starts a backup. <c>GES.7002</c> (<see cref="HuaweiCloudErrorKind.Conflict"/>) means one is already running.</summary>
    public Task<AddBackupResult> AddBackupAsync(string graphId, CancellationToken cancellationToken = default) =>
        api.AddBackupAsync(Project, Id(graphId), new EmptyBody(), cancellationToken);

    public Task<GesBackupPage> ListBackupsAsync(string graphId, int offset = 0, int limit = 10, CancellationToken cancellationToken = default)
    {
        ValidatePaging(offset, limit);
        return api.ListBackupsAsync(Project, Id(graphId), offset, limit, cancellationToken);
    }

    /// <summary>Every backup of a graph, reading page after page.</summary>
    public Task<IReadOnlyList<GesBackup>> ListAllBackupsAsync(string graphId, CancellationToken cancellationToken = default) =>
        CollectAsync((offset, ct) => ListBackupsAsync(graphId, offset, ListPageSize, ct), cancellationToken);

    /// <summary>The backup's files with download links valid for an hour. The links are secrets.</summary>
    public Task<GesBackupFiles> GetDownloadLinksAsync(string graphId, string backupId, CancellationToken cancellationToken = default) =>
        api.GetDownloadLinksAsync(Project, Id(graphId), Id(backupId, nameof(backupId)), cancellationToken);

    /// <summary>Imports a backup from an OBS path (<c>bucket/path/</c>). Not retried after an ambiguous failure.</summary>
    public Task<JobIdResult> ImportBackupAsync(string graphId, string importPath, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(importPath);
        return api.ImportBackupAsync(Project, Id(graphId), new ImportBackupRequest(importPath), cancellationToken);
    }

    public async Task<GesGraph> GetGraphAsync(string graphId, CancellationToken cancellationToken = default) =>
        (await api.GetGraphAsync(Project, Id(graphId), cancellationToken)).Graph;

    /// <summary>A job's status. An unknown job is <c>GES.7007</c> (<see cref="HuaweiCloudErrorKind.NotFound"/>).</summary>
    public Task<GesJob> GetJobAsync(string graphId, string jobId, CancellationToken cancellationToken = default) =>
        api.GetJobAsync(Project, Id(graphId), Id(jobId, nameof(jobId)), cancellationToken);

    public Task<GesJobPage> ListJobsAsync(GesJobQuery? query = null, int offset = 0, int limit = 10, CancellationToken cancellationToken = default)
    {
        ValidatePaging(offset, limit);
        return api.ListJobsAsync(Project, offset, limit, query?.Status, query?.GraphName,
            query?.StartDate?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), query?.EndDate?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            cancellationToken);
    }

    private static string Id(string value, string name = "graphId") => HuaweiCloudIds.Id(value, name);

    private static async Task<IReadOnlyList<GesBackup>> CollectAsync(Func<int, CancellationToken, Task<GesBackupPage>> page,
        CancellationToken cancellationToken)
    {
        var all = new List<GesBackup>();
        while (true)
        {
            var next = await page(all.Count, cancellationToken);
            all.AddRange(next.BackupList);
            if (next.BackupList.Count == 0 || all.Count >= next.BackupCount)
            {
                return all;
            }
        }
    }

    private static void ValidatePaging(int offset, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
    }
}
