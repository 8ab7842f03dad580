using System.Globalization;
using BackupRelay.HuaweiCloud.Json;
using BackupRelay.HuaweiCloud.Resilience;
using Microsoft.Extensions.Options;

namespace BackupRelay.HuaweiCloud.Ges;

/// <summary>GES v2 management calls used by BackupRelay: backups, download links, import/export, graph start/stop, jobs.</summary>
public sealed class GesClient(HttpClient http, IOptions<HuaweiCloudOptions> options, TimeProvider time)
    : HuaweiCloudClientBase(http, time)
{
    /// <summary>Page size used when reading every backup of a graph.</summary>
    public const int ListPageSize = 100;

    private string Graphs => $"v2/{HuaweiCloudIds.ProjectId(options.Value.ProjectId)}/graphs";

    private string Graph(string graphId) => $"{Graphs}/{HuaweiCloudIds.Id(graphId, nameof(graphId))}";

    /// <summary>Starts a backup. <c>GES.7002</c> (<see cref="HuaweiCloudErrorKind.Conflict"/>) means one is already running.</summary>
    public Task<AddBackupResult> AddBackupAsync(string graphId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"{Graph(graphId)}/backups", new EmptyBody(), HuaweiSnakeJson.Default.EmptyBody,
            HuaweiSnakeJson.Default.AddBackupResult, RetryMode.Always, null, cancellationToken);

    public Task<GesBackupPage> ListBackupsAsync(string graphId, int offset = 0, int limit = 10, CancellationToken cancellationToken = default)
    {
        ValidatePaging(offset, limit);
        return SendAsync<EmptyBody, GesBackupPage>(HttpMethod.Get, $"{Graph(graphId)}/backups?offset={offset}&limit={limit}",
            null, null, HuaweiSnakeJson.Default.GesBackupPage, RetryMode.Always, null, cancellationToken);
    }

    /// <summary>Every backup of a graph, reading page after page.</summary>
    public Task<IReadOnlyList<GesBackup>> ListAllBackupsAsync(string graphId, CancellationToken cancellationToken = default) =>
        CollectAsync((offset, ct) => ListBackupsAsync(graphId, offset, ListPageSize, ct), cancellationToken);

    /// <summary>One page of the backups of every graph of the project.</summary>
    public Task<GesBackupPage> ListProjectBackupsAsync(int offset = 0, int limit = 10, CancellationToken cancellationToken = default)
    {
        ValidatePaging(offset, limit);
        return SendAsync<EmptyBody, GesBackupPage>(HttpMethod.Get, $"{Graphs}/backups?offset={offset}&limit={limit}",
            null, null, HuaweiSnakeJson.Default.GesBackupPage, RetryMode.Always, null, cancellationToken);
    }

    public Task<IReadOnlyList<GesBackup>> ListAllProjectBackupsAsync(CancellationToken cancellationToken = default) =>
        CollectAsync((offset, ct) => ListProjectBackupsAsync(offset, ListPageSize, ct), cancellationToken);

    public async Task DeleteBackupAsync(string graphId, string backupId, CancellationToken cancellationToken = default) =>
        await SendAsync<EmptyBody, EmptyBody>(HttpMethod.Delete, $"{Graph(graphId)}/backups/{HuaweiCloudIds.Id(backupId, nameof(backupId))}",
            null, null, HuaweiSnakeJson.Default.EmptyBody, RetryMode.Always, null, cancellationToken);

    /// <summary>The backup's files with download links valid for an hour. The links are secrets.</summary>
    public Task<GesBackupFiles> GetDownloadLinksAsync(string graphId, string backupId, CancellationToken cancellationToken = default) =>
        SendAsync<EmptyBody, GesBackupFiles>(HttpMethod.Get,
            $"{Graph(graphId)}/backup-files?backup_id={Uri.EscapeDataString(HuaweiCloudIds.Id(backupId, nameof(backupId)))}",
            null, null, HuaweiSnakeJson.Default.GesBackupFiles, RetryMode.Always, null, cancellationToken);

    /// <summary>Imports a backup from an OBS path (<c>bucket/path/</c>). Not retried after an ambiguous failure.</summary>
    public Task<JobIdResult> ImportBackupAsync(string graphId, string importPath, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(importPath);
        return SendAsync(HttpMethod.Post, $"{Graph(graphId)}/backups/import", new ImportBackupRequest(importPath),
            HuaweiSnakeJson.Default.ImportBackupRequest, HuaweiSnakeJson.Default.JobIdResult, RetryMode.OnlyIfNotProcessed, null, cancellationToken);
    }

    /// <summary>Exports a backup to an OBS path; a repeat writes the same files, so it is retried.</summary>
    public Task<JobIdResult> ExportBackupAsync(string graphId, string backupId, string exportPath, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(exportPath);
        return SendAsync(HttpMethod.Post, $"{Graph(graphId)}/backups/export",
            new ExportBackupRequest(HuaweiCloudIds.Id(backupId, nameof(backupId)), exportPath),
            HuaweiSnakeJson.Default.ExportBackupRequest, HuaweiSnakeJson.Default.JobIdResult, RetryMode.Always, null, cancellationToken);
    }

    public async Task<GesGraph> GetGraphAsync(string graphId, CancellationToken cancellationToken = default) =>
        (await SendAsync<EmptyBody, GesGraphResponse>(HttpMethod.Get, Graph(graphId), null, null,
            HuaweiSnakeJson.Default.GesGraphResponse, RetryMode.Always, null, cancellationToken)).Graph;

    /// <summary>Starts a stopped graph; with <paramref name="backupId"/> it restores that backup.</summary>
    public Task<JobIdResult> StartGraphAsync(string graphId, string? backupId = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"{Graph(graphId)}/start",
            new StartGraphRequest(backupId is null ? null : HuaweiCloudIds.Id(backupId, nameof(backupId))),
            HuaweiSnakeJson.Default.StartGraphRequest, HuaweiSnakeJson.Default.JobIdResult, RetryMode.OnlyIfNotProcessed, null, cancellationToken);

    public Task<JobIdResult> StopGraphAsync(string graphId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"{Graph(graphId)}/stop", new EmptyBody(), HuaweiSnakeJson.Default.EmptyBody,
            HuaweiSnakeJson.Default.JobIdResult, RetryMode.OnlyIfNotProcessed, null, cancellationToken);

    /// <summary>A job's status. An unknown job is <c>GES.7007</c> (<see cref="HuaweiCloudErrorKind.NotFound"/>).</summary>
    public Task<GesJob> GetJobAsync(string graphId, string jobId, CancellationToken cancellationToken = default) =>
        SendAsync<EmptyBody, GesJob>(HttpMethod.Get, $"{Graph(graphId)}/jobs/{HuaweiCloudIds.Id(jobId, nameof(jobId))}/status",
            null, null, HuaweiSnakeJson.Default.GesJob, RetryMode.Always, null, cancellationToken);

    public Task<GesJobPage> ListJobsAsync(GesJobQuery? query = null, int offset = 0, int limit = 10, CancellationToken cancellationToken = default)
    {
        ValidatePaging(offset, limit);
        var uri = $"{Graphs}/jobs?offset={offset}&limit={limit}";
        if (query?.Status is { } status)
        {
            uri += "&status=" + Uri.EscapeDataString(status);
        }

        if (query?.GraphName is { } name)
        {
            uri += "&graph_name=" + Uri.EscapeDataString(name);
        }

        if (query?.StartDate is { } start)
        {
            uri += "&start_time=" + start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        if (query?.EndDate is { } end)
        {
            uri += "&end_time=" + end.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        return SendAsync<EmptyBody, GesJobPage>(HttpMethod.Get, uri, null, null, HuaweiSnakeJson.Default.GesJobPage,
            RetryMode.Always, null, cancellationToken);
    }

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
