using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Unit.Handlers;

/// <summary>
/// Run records in memory, stored as their JSON (as the blob store keeps them): every read is a copy, every
/// update a read-modify-write of the stored text. <see cref="BeforeWrite"/> lets a test change the stored
/// record between a handler's read and its write, as a concurrent delivery would.
/// </summary>
public sealed class FakeRunRecords : IRunRecords
{
    private readonly ConcurrentDictionary<string, string> _stored = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _copyClaims = new(StringComparer.Ordinal);

    public int Writes { get; private set; }

    public Action<RunRecord>? BeforeWrite { get; set; }

    public void Put(RunRecord run) => _stored[run.Id] = JsonSerializer.Serialize(run, RunRecordJson.Default.RunRecord);

    public RunRecord this[string runId] => Read(runId)!;

    public void ClaimCopy(string backupId, string owner) => _copyClaims[backupId] = owner;

    public Task<RunRecord?> GetAsync(string runId, CancellationToken cancellationToken = default) => Task.FromResult(Read(runId));

    public Task<(RunRecord Record, bool Created)> CreateAsync(RunRecord record, CancellationToken cancellationToken = default)
    {
        if (Read(record.Id) is { } existing)
        {
            return Task.FromResult((existing, false));
        }

        Put(record);
        Writes++;
        return Task.FromResult((Read(record.Id)!, true));
    }

    public Task<RunRecord> UpdateAsync(string runId, Func<RunRecord, bool> mutate, CancellationToken cancellationToken = default)
    {
        var run = Read(runId) ?? throw new RunNotFoundException(runId);
        if (!mutate(run))
        {
            return Task.FromResult(run);
        }

        BeforeWrite?.Invoke(run);
        Put(run);
        Writes++;
        return Task.FromResult(Read(runId)!);
    }

    public Task<string> ClaimCopyAsync(string backupId, string runId, CancellationToken cancellationToken = default) =>
        Task.FromResult(_copyClaims.GetOrAdd(backupId, runId));

    private RunRecord? Read(string runId) =>
        _stored.TryGetValue(runId, out var json) ? JsonSerializer.Deserialize(json, RunRecordJson.Default.RunRecord) : null;
}

/// <summary>The messages a handler sent, with their delays.</summary>
public sealed class RecordingSender : IWorkSender
{
    public List<(object Message, TimeSpan? Delay)> Sent { get; } = [];

    public IEnumerable<T> OfType<T>() => Sent.Select(s => s.Message).OfType<T>();

    public Task SendPollAsync(PollBackupJobMessage message, TimeSpan delay, CancellationToken cancellationToken = default) => Record(message, delay);

    public Task SendOperationPollAsync(PollOperationMessage message, TimeSpan delay, CancellationToken cancellationToken = default) => Record(message, delay);

    public Task SendUploadAsync(RestoreUploadMessage message, TimeSpan? delay = null, CancellationToken cancellationToken = default) => Record(message, delay);

    public Task SendCopyAsync(CopyBackupFileMessage message, CancellationToken cancellationToken = default) => Record(message, null);

    private Task Record(object message, TimeSpan? delay)
    {
        Sent.Add((message, delay));
        return Task.CompletedTask;
    }
}

/// <summary>GES as a handler sees it through <see cref="GesClient"/>: graphs, jobs and backups a test sets, and the calls made.</summary>
public sealed class FakeGesApi : IGesApi
{
    public Dictionary<string, GesGraph> Graphs { get; } = [];
    public Dictionary<string, GesJob> Jobs { get; } = [];
    public List<GesBackup> Backups { get; } = [];
    public Dictionary<string, List<GesBackupFile>> Files { get; } = [];
    public List<string> Calls { get; } = [];

    /// <summary>What add-backup does: by default starts job "job-new" making backup "b-new".</summary>
    public Func<string, AddBackupResult> AddBackup { get; set; } = _ => new AddBackupResult("job-new", "b-new");

    public Func<string, JobIdResult> Import { get; set; } = _ => new JobIdResult("import-job");

    public static HuaweiCloudException Error(HuaweiCloudErrorKind kind, string code) =>
        new(kind, HttpStatusCode.BadRequest, code, "refused", null);

    public Task<AddBackupResult> AddBackupAsync(string projectId, string graphId, EmptyBody body, CancellationToken cancellationToken) =>
        Call($"add-backup {graphId}", () => AddBackup(graphId));

    public Task<GesBackupPage> ListBackupsAsync(string projectId, string graphId, int offset, int limit, CancellationToken cancellationToken) =>
        Call($"list-backups {graphId}", () =>
        {
            var of = Backups.Where(b => b.GraphId == graphId).ToList();
            return new GesBackupPage(of.Count, [.. of.Skip(offset).Take(limit)]);
        });

    public Task<GesBackupFiles> GetDownloadLinksAsync(string projectId, string graphId, string backupId, CancellationToken cancellationToken) =>
        Call($"backup-files {backupId}", () => new GesBackupFiles("bucket", Files.GetValueOrDefault(backupId) ?? []));

    public Task<JobIdResult> ImportBackupAsync(string projectId, string graphId, ImportBackupRequest body, CancellationToken cancellationToken) =>
        Call($"import {graphId}", () => Import(graphId));

    public Task<GesGraphResponse> GetGraphAsync(string projectId, string graphId, CancellationToken cancellationToken) =>
        Call($"get-graph {graphId}", () => new GesGraphResponse(Graphs.TryGetValue(graphId, out var graph)
            ? graph
            : throw Error(HuaweiCloudErrorKind.NotFound, "GES.8011")));

    public Task<GesJob> GetJobAsync(string projectId, string graphId, string jobId, CancellationToken cancellationToken) =>
        Call($"get-job {jobId}", () => Jobs.TryGetValue(jobId, out var job) ? job : throw Error(HuaweiCloudErrorKind.NotFound, "GES.7007"));

    public Task<GesJobPage> ListJobsAsync(string projectId, int offset, int limit, string? status, string? graphName, string? startTime, string? endTime,
        CancellationToken cancellationToken) =>
        Call("list-jobs", () => new GesJobPage(Jobs.Count, [.. Jobs.Values.Skip(offset).Take(limit)]));

    private Task<T> Call<T>(string call, Func<T> answer)
    {
        Calls.Add(call);
        return Task.FromResult(answer());
    }
}
