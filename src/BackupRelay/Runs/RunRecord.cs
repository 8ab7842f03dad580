using System.Text.Json.Serialization;

namespace BackupRelay.Runs;

[JsonConverter(typeof(JsonStringEnumConverter<RunStatus>))]
public enum RunStatus
{
    Queued,
    Running,
    Succeeded,
    PartiallyFailed,
    Failed,
}

[JsonConverter(typeof(JsonStringEnumConverter<RunFileStatus>))]
public enum RunFileStatus
{
    Pending,
    Copying,
    Completed,
    Failed,
}

/// <summary>
/// One run, as stored in <c>backuprelay-runs/runs/{id}.json</c> and returned by <c>GET /api/runs/{id}</c>.
/// Holds no secret: no token, no link.
/// </summary>
public sealed class RunRecord
{
    public string Id { get; set; } = "";
    /// <summary>What the run does (stored as <c>backup</c>, <c>restore</c>, <c>import</c>, <c>restore-from-copy</c> or <c>restore-drill</c>).</summary>
    public RunKind Kind { get; set; } = RunKind.Backup;

    /// <summary>Restore drills: the graph the copy is imported into (<see cref="GraphId"/> is the graph whose copy is proven).</summary>
    public string? TargetGraphId { get; set; }

    /// <summary>Restore drills: when the copy being restored was made (its backup run's end), for the copy's age.</summary>
    public DateTimeOffset? CopyMadeAt { get; set; }

    /// <summary>Restore drills: when the objects the drill uploaded to OBS were deleted (null: not yet).</summary>
    public DateTimeOffset? ObsCleanedAt { get; set; }

    /// <summary>The graph GES imports a restore into: a drill's target, else the run's graph.</summary>
    [JsonIgnore]
    public string ImportGraphId => TargetGraphId ?? GraphId;

    /// <summary>Restore runs: the CSE engine, its backup, and the CSE restore record.</summary>
    public string? EngineId { get; set; }

    public string? RestoreId { get; set; }
    public string? RestoreStatus { get; set; }

    /// <summary>Import and restore-from-copy runs: the OBS path imported from (<c>bucket/prefix/</c>).</summary>
    public string? ImportPath { get; set; }

    /// <summary>Restore-from-copy runs: the graph folder in the destination the copy is read from.</summary>
    public string? SourceGraph { get; set; }

    /// <summary>SHA-256 of what a keyed request asked for: the same <c>Idempotency-Key</c> with another request is refused.</summary>
    public string? RequestDigest { get; set; }

    /// <summary>Restore-from-copy runs: the backup GES created by importing the files.</summary>
    public string? ImportedBackupId { get; set; }
    public string GraphId { get; set; } = "";
    public string? GraphName { get; set; }

    /// <summary><c>schedule</c> or <c>http</c>.</summary>
    public string Trigger { get; set; } = "schedule";

    public RunStatus Status { get; set; } = RunStatus.Queued;

    /// <summary>What the run is doing now.</summary>
    public RunStep Step { get; set; } = RunStep.Queued;

    public string? JobId { get; set; }
    public string? BackupId { get; set; }

    /// <summary>
    /// Another run already copies (or copied) this run's GES backup: this one follows that copy
    /// instead of making its own, and ends as it ends.
    /// </summary>
    public string? FollowsRunId { get; set; }
    public DateTimeOffset? ScheduledAt { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>Set just before add-backup is called: a redelivery after a crash looks for a backup started since.</summary>
    public DateTimeOffset? SubmittedAt { get; set; }

    /// <summary>The start message that claimed the right to call add-backup (its nonce); duplicates stand aside.</summary>
    public string? SubmitClaim { get; set; }

    /// <summary>
    /// The first claim's time: a job this run submitted started after it, however many claims came since (each
    /// claim moves <see cref="SubmittedAt"/>, the lease's clock, forward).
    /// </summary>
    public DateTimeOffset? FirstClaimAt { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }
    public DateTimeOffset? Deadline { get; set; }
    public int PollCount { get; set; }

    /// <summary>Where the files go: <c>container/graph/backup</c> or a directory.</summary>
    public string? Destination { get; set; }

    public RunBackupInfo? Backup { get; set; }
    public List<RunFile> Files { get; set; } = [];

    /// <summary>The run's file called <paramref name="name"/> (it must be listed).</summary>
    public RunFile FileNamed(string name) => Files.First(f => f.Name == name);

    public List<RunError> Errors { get; set; } = [];

    /// <summary>The ended run's notification was queued (<c>Notify__Url</c>); until then a sweep queues it.</summary>
    public bool NotificationQueued { get; set; }

    /// <summary>The run's trace in the telemetry (W3C trace id), to find its spans and logs.</summary>
    public string? TraceId { get; set; }

    [JsonIgnore]
    public bool IsFinished => Ended(Status);

    /// <summary>Whether a run in <paramref name="status"/> has ended (no status follows it).</summary>
    public static bool Ended(RunStatus status) => status is RunStatus.Succeeded or RunStatus.PartiallyFailed or RunStatus.Failed;

    /// <summary>
    /// Claims the right to submit this run's long-running job (add-backup, import) for the message
    /// <paramref name="nonce"/>: refused once a job is recorded or the run ended, and while another
    /// message's claim is younger than <paramref name="lease"/>; the claimant's own redelivery, or anyone
    /// after the lease, takes over. <paramref name="previous"/> is the first earlier claim's time (null: none),
    /// so the new claimant can look for a job any earlier attempt started.
    /// </summary>
    public bool TryClaimSubmission(string nonce, DateTimeOffset now, TimeSpan lease, out DateTimeOffset? previous)
    {
        previous = null;
        if (IsFinished || JobId is not null
            || (SubmitClaim is { } holder && holder != nonce && SubmittedAt is { } at && now - at < lease))
        {
            return false;
        }

        // A job an earlier claim submitted started after the first claim: later claims must look back that far.
        previous = SubmittedAt is null ? null : FirstClaimAt ?? SubmittedAt;
        FirstClaimAt ??= SubmittedAt ?? now;
        SubmitClaim = nonce;
        SubmittedAt = now;
        UpdatedAt = now;
        return true;
    }

    /// <summary>Ends the run <paramref name="status"/> (failed unless told), recording why and at which step.</summary>
    public void Fail(DateTimeOffset now, RunStep step, string reason, RunStatus status = RunStatus.Failed) => Fail(now, step.Name(), reason, status);

    /// <summary>
    /// Ends the run failed, the error naming <paramref name="where"/> it happened: a step's name, or the queue
    /// function whose message ran out of deliveries.
    /// </summary>
    public void Fail(DateTimeOffset now, string where, string reason, RunStatus status = RunStatus.Failed)
    {
        End(status, now);
        Errors.Add(new RunError(now, where, reason));
    }

    /// <summary>Ends the run succeeded.</summary>
    public void Succeed(DateTimeOffset now) => End(RunStatus.Succeeded, now);

    /// <summary>Every way a run ends comes here: its final status, step done, the time.</summary>
    private void End(RunStatus status, DateTimeOffset now)
    {
        Status = status;
        Step = RunStep.Done;
        CompletedAt = now;
        UpdatedAt = now;
    }

    /// <summary>Poll <paramref name="attempt"/> is the one the run waits for: not a stale duplicate, not early, the run not ended.</summary>
    public bool IsCurrentPoll(int attempt) => !IsFinished && PollCount == attempt;

    /// <summary>Counts poll <paramref name="attempt"/> as done; false (nothing changes) unless it is the one the run waits for.</summary>
    public bool CountPoll(int attempt, DateTimeOffset now)
    {
        if (PollCount != attempt)
        {
            return false;
        }

        PollCount++;
        UpdatedAt = now;
        return true;
    }

    /// <summary>The long-running job (add-backup, import, engine restore) is known: the run follows it at <paramref name="step"/>.</summary>
    public void RecordJob(string jobId, RunStep step, DateTimeOffset now)
    {
        JobId = jobId;
        SubmittedAt ??= now;
        Status = RunStatus.Running;
        Step = step;
        UpdatedAt = now;
    }

    /// <summary>The GES backup this run copies (or follows), as GES lists it.</summary>
    public void RecordBackup(RunBackupInfo backup, string? graphName)
    {
        BackupId = backup.Id;
        Backup = backup;
        GraphName ??= graphName;
    }

    /// <summary>Another run copies this run's backup: this one follows it.</summary>
    public void Follow(string leaderId, DateTimeOffset now)
    {
        FollowsRunId = leaderId;
        Step = RunStep.Following;
        UpdatedAt = now;
    }

    /// <summary>The run this one followed has ended: this one ends the same way, with its files.</summary>
    public void EndAs(RunRecord leader, DateTimeOffset now)
    {
        Files = leader.Files;
        End(leader.Status, now);
        if (leader.Status != RunStatus.Succeeded)
        {
            Errors.Add(new RunError(now, RunStep.Following.Name(), $"run {leader.Id}, which copied backup {BackupId}, ended {leader.Status}"));
        }
    }

    /// <summary>The backup's files are listed (kept as they are on a redelivery): the copies begin.</summary>
    public void StartCopying(IEnumerable<RunFile> files, DateTimeOffset now)
    {
        if (Files.Count == 0)
        {
            Files = [.. files];
        }

        Step = RunStep.Copying;
        UpdatedAt = now;
    }

    /// <summary>
    /// File <paramref name="name"/> could not be copied or uploaded. <paramref name="endRun"/>: the run fails
    /// with it (a restore needs every file); else the run goes on and ends by its files.
    /// </summary>
    public bool FailFile(string name, RunStep step, string reason, DateTimeOffset now, bool endRun)
    {
        var file = FileNamed(name);
        if (endRun ? IsFinished : file.IsEnded)
        {
            return false;
        }

        file.Status = RunFileStatus.Failed;
        file.Error = reason;
        if (endRun)
        {
            Fail(now, step, $"{name}: {reason}");
        }
        else
        {
            Errors.Add(new RunError(now, step.Name(), $"{name}: {reason}"));
            UpdatedAt = now;
        }

        return true;
    }

    /// <summary>Every file has ended: the run ends succeeded, partially failed or failed by how many were copied.</summary>
    public void FinishByFiles(DateTimeOffset now)
    {
        var copied = Files.Count(f => f.Status == RunFileStatus.Completed);
        End(copied == Files.Count ? RunStatus.Succeeded : copied == 0 ? RunStatus.Failed : RunStatus.PartiallyFailed, now);
    }
}

/// <summary>The backup as GES lists it.</summary>
public sealed record RunBackupInfo(string Id, string? Name, string? BackupMethod, string? Status, long? SizeMb,
    DateTimeOffset? StartedAt, DateTimeOffset? EndedAt, long? DurationSeconds, string? DataStoreVersion, string? Arch);

public sealed class RunFile
{
    public string Name { get; set; } = "";

    /// <summary>Size GES announced, in KB (rounded).</summary>
    public long? SizeKb { get; set; }

    /// <summary>Exact size in bytes, once the source told it.</summary>
    public long? Size { get; set; }

    public long BytesCopied { get; set; }
    public RunFileStatus Status { get; set; } = RunFileStatus.Pending;
    public string? Md5 { get; set; }
    public string? Sha256 { get; set; }
    public int Slices { get; set; }

    /// <summary>What "verified" rests on for this file: <c>source-md5</c>, <c>second-read</c> or <c>received-only</c> (see docs/internals.md).</summary>
    public string? Verification { get; set; }

    /// <summary>Copies started again from scratch because the bytes received did not match the source.</summary>
    public int ContentRetries { get; set; }

    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    public string? Error { get; set; }

    /// <summary>Completed or failed: nothing more happens to it.</summary>
    [JsonIgnore]
    public bool IsEnded => Status is RunFileStatus.Completed or RunFileStatus.Failed;

    /// <summary>
    /// A slice ended at <paramref name="offset"/>: the file is copying. Returns the bytes it adds to what was
    /// counted (0 for a redelivered slice, so nothing is counted twice); null when the file has ended.
    /// </summary>
    public long? Progress(long offset, long? size, DateTimeOffset startedAt)
    {
        if (IsEnded)
        {
            return null;
        }

        var added = Math.Max(0, offset - BytesCopied);
        Status = RunFileStatus.Copying;
        Size = size ?? Size;
        BytesCopied = Math.Max(BytesCopied, offset);
        Slices++;
        StartedAt ??= startedAt;
        return added;
    }

    /// <summary>
    /// The file is all there and checked: its hashes and what they rest on. Returns the bytes it adds to what
    /// was counted; null when it had already completed.
    /// </summary>
    public long? Complete(long size, string? md5, string? sha256, string? verification, DateTimeOffset startedAt, DateTimeOffset now)
    {
        if (Status == RunFileStatus.Completed)
        {
            return null;
        }

        var added = Math.Max(0, size - BytesCopied);
        Status = RunFileStatus.Completed;
        Size = size;
        BytesCopied = size;
        Md5 = md5 ?? Md5;
        Sha256 = sha256 ?? Sha256;
        Verification = verification ?? Verification;
        Slices++;
        StartedAt ??= startedAt;
        CompletedAt = now;
        Error = null;
        return added;
    }

    /// <summary>
    /// The bytes received were not the source's: the file is copied again from scratch as copy
    /// <paramref name="attempt"/> + 1. False when it ended or that copy was already counted.
    /// </summary>
    public bool CopyAgain(int attempt, string? reason)
    {
        if (IsEnded || ContentRetries > attempt)
        {
            return false;
        }

        Status = RunFileStatus.Copying;
        BytesCopied = 0;
        ContentRetries = attempt + 1;
        Error = reason;
        return true;
    }
}

/// <summary>
/// Something that went wrong in a run. <paramref name="Step"/> is the <see cref="RunStep"/>'s name, or the
/// queue function whose message ran out of deliveries (a free label: records keep what they were written with).
/// </summary>
public sealed record RunError(DateTimeOffset Time, string Step, string Reason);
