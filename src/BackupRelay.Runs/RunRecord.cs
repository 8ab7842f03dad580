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
/// Holds no secret: no token, no link. An aggregate: its fields are set by its factories (one per kind) and its
/// transitions, which refuse an illegal move; outside this assembly nothing else can set them.
/// </summary>
public sealed class RunRecord
{
    [JsonConstructor]
    internal RunRecord()
    {
    }

    [JsonInclude]
    public string Id { get; internal set; } = "";
    /// <summary>What the run does (stored as <c>backup</c>, <c>restore</c>, <c>import</c>, <c>restore-from-copy</c> or <c>restore-drill</c>).</summary>
    [JsonInclude]
    public RunKind Kind { get; internal set; } = RunKind.Backup;

    /// <summary>Restore drills: the graph the copy is imported into (<see cref="GraphId"/> is the graph whose copy is proven).</summary>
    [JsonInclude]
    public string? TargetGraphId { get; internal set; }

    /// <summary>Restore drills: when the copy being restored was made (its backup run's end), for the copy's age.</summary>
    [JsonInclude]
    public DateTimeOffset? CopyMadeAt { get; internal set; }

    /// <summary>Restore drills: when the objects the drill uploaded to OBS were deleted (null: not yet).</summary>
    [JsonInclude]
    public DateTimeOffset? ObsCleanedAt { get; internal set; }

    /// <summary>The graph GES imports a restore into: a drill's target, else the run's graph.</summary>
    [JsonIgnore]
    public string ImportGraphId => TargetGraphId ?? GraphId;

    /// <summary>Restore runs: the CSE engine, its backup, and the CSE restore record.</summary>
    [JsonInclude]
    public string? EngineId { get; internal set; }

    [JsonInclude]
    public string? RestoreId { get; internal set; }
    [JsonInclude]
    public string? RestoreStatus { get; internal set; }

    /// <summary>Import and restore-from-copy runs: the OBS path imported from (<c>bucket/prefix/</c>).</summary>
    [JsonInclude]
    public string? ImportPath { get; internal set; }

    /// <summary>Restore-from-copy runs: the graph folder in the destination the copy is read from.</summary>
    [JsonInclude]
    public string? SourceGraph { get; internal set; }

    /// <summary>SHA-256 of what a keyed request asked for: the same <c>Idempotency-Key</c> with another request is refused.</summary>
    [JsonInclude]
    public string? RequestDigest { get; internal set; }

    /// <summary>Restore-from-copy runs: the backup GES created by importing the files.</summary>
    [JsonInclude]
    public string? ImportedBackupId { get; internal set; }
    [JsonInclude]
    public string GraphId { get; internal set; } = "";
    [JsonInclude]
    public string? GraphName { get; internal set; }

    /// <summary><c>schedule</c> or <c>http</c>.</summary>
    [JsonInclude]
    public string Trigger { get; internal set; } = "schedule";

    [JsonInclude]
    public RunStatus Status { get; internal set; } = RunStatus.Queued;

    /// <summary>What the run is doing now.</summary>
    [JsonInclude]
    public RunStep Step { get; internal set; } = RunStep.Queued;

    [JsonInclude]
    public string? JobId { get; internal set; }
    [JsonInclude]
    public string? BackupId { get; internal set; }

    /// <summary>
    /// Another run already copies (or copied) this run's GES backup: this one follows that copy
    /// instead of making its own, and ends as it ends.
    /// </summary>
    [JsonInclude]
    public string? FollowsRunId { get; internal set; }
    [JsonInclude]
    public DateTimeOffset? ScheduledAt { get; internal set; }
    [JsonInclude]
    public DateTimeOffset CreatedAt { get; internal set; }
    [JsonInclude]
    public DateTimeOffset UpdatedAt { get; internal set; }

    /// <summary>Set just before add-backup is called: a redelivery after a crash looks for a backup started since.</summary>
    [JsonInclude]
    public DateTimeOffset? SubmittedAt { get; internal set; }

    /// <summary>The start message that claimed the right to call add-backup (its nonce); duplicates stand aside.</summary>
    [JsonInclude]
    public string? SubmitClaim { get; internal set; }

    /// <summary>
    /// The first claim's time: a job this run submitted started after it, however many claims came since (each
    /// claim moves <see cref="SubmittedAt"/>, the lease's clock, forward).
    /// </summary>
    [JsonInclude]
    public DateTimeOffset? FirstClaimAt { get; internal set; }

    [JsonInclude]
    public DateTimeOffset? CompletedAt { get; internal set; }
    [JsonInclude]
    public DateTimeOffset? Deadline { get; internal set; }
    [JsonInclude]
    public int PollCount { get; internal set; }

    /// <summary>Where the files go: <c>container/graph/backup</c> or a directory.</summary>
    [JsonInclude]
    public string? Destination { get; internal set; }

    [JsonInclude]
    public RunBackupInfo? Backup { get; internal set; }
    [JsonInclude]
    public List<RunFile> Files { get; internal set; } = [];

    /// <summary>The run's file called <paramref name="name"/> (it must be listed).</summary>
    public RunFile FileNamed(string name) => Files.First(f => f.Name == name);

    [JsonInclude]
    public List<RunError> Errors { get; internal set; } = [];

    /// <summary>The ended run's notification was queued (<c>Notify__Url</c>); until then a sweep queues it.</summary>
    [JsonInclude]
    public bool NotificationQueued { get; internal set; }

    /// <summary>The run's trace in the telemetry (W3C trace id), to find its spans and logs.</summary>
    [JsonInclude]
    public string? TraceId { get; internal set; }

    /// <summary>
    /// Backup runs, once ended: what the copy proves (<see cref="CopyTrust"/>), decided when the run ended. Null for
    /// other kinds, for runs not ended, and in records written before the level existed (<see cref="Trust"/> decides it then).
    /// </summary>
    [JsonInclude]
    public CopyTrust? Copy { get; internal set; }

    /// <summary>
    /// The run's job was found running in GES, not started by its own call (after a crash, a failed call, or GES.7002):
    /// it can be a job another run of the graph started, and that run and this one then make one copy between them
    /// (<see cref="FollowsRunId"/>, <see cref="JoinedBy"/>).
    /// </summary>
    [JsonInclude]
    public bool? JobAdopted { get; internal set; }

    /// <summary>Runs that met this run's GES backup and follow this run's copy of it instead of making their own.</summary>
    [JsonInclude]
    public List<string>? JoinedBy { get; internal set; }

    /// <summary>Restores from a copy: the least the copy was allowed to prove (what the request accepted), and what it proved.</summary>
    [JsonInclude]
    public CopyLevel? RestoredLevel { get; internal set; }

    /// <summary>What this backup run's copy proves: as decided when it ended, or for an older record, decided now from the same rule.</summary>
    [JsonIgnore]
    public CopyTrust? Trust => Copy ?? CopyTrust.Decide(this);

    [JsonIgnore]
    public bool IsFinished => Ended(Status);

    /// <summary>Whether a run in <paramref name="status"/> has ended (no status follows it).</summary>
    public static bool Ended(RunStatus status) => status is RunStatus.Succeeded or RunStatus.PartiallyFailed or RunStatus.Failed;


    /// <summary>A backup run: its start message (scheduled or <c>backup-now</c>) calls GES add-backup.</summary>
    public static RunRecord NewBackup(string id, string graphId, string trigger, DateTimeOffset? scheduledAt, DateTimeOffset now, TimeSpan jobDeadline) => Traced(new()
    {
        Id = id,
        Kind = RunKind.Backup,
        GraphId = graphId,
        Trigger = trigger,
        ScheduledAt = scheduledAt,
        CreatedAt = now,
        UpdatedAt = now,
        Deadline = now + jobDeadline,
    });

    /// <summary>
    /// A CSE engine restore CSE accepted (<paramref name="jobId"/>: the job it reports, null when it reports none:
    /// the run then ends failed at once, there being nothing to follow).
    /// </summary>
    public static RunRecord NewEngineRestore(string id, string engineId, string backupId, string? restoreId, string? restoreStatus, string? jobId,
        DateTimeOffset now, TimeSpan jobDeadline)
    {
        var run = Traced(new()
        {
            Id = id,
            Kind = RunKind.EngineRestore,
            Trigger = "http",
            EngineId = engineId,
            BackupId = backupId,
            GraphId = "",
            RestoreId = restoreId,
            RestoreStatus = restoreStatus,
            JobId = jobId,
            Status = RunStatus.Running,
            Step = RunStep.Restoring,
            CreatedAt = now,
            UpdatedAt = now,
            SubmittedAt = now,
            Deadline = now + jobDeadline,
        });
        if (jobId is null)
        {
            run.Fail(now, RunStep.Restoring, "CSE accepted the restore but reports no job to follow");
        }

        return run;
    }

    /// <summary>A GES import from OBS that GES accepted as job <paramref name="jobId"/>.</summary>
    public static RunRecord NewImport(string id, string graphId, string importPath, string jobId, DateTimeOffset now, TimeSpan jobDeadline) => Traced(new()
    {
        Id = id,
        Kind = RunKind.Import,
        Trigger = "http",
        GraphId = graphId,
        ImportPath = importPath,
        JobId = jobId,
        Status = RunStatus.Running,
        Step = RunStep.Importing,
        CreatedAt = now,
        UpdatedAt = now,
        SubmittedAt = now,
        Deadline = now + jobDeadline,
    });

    /// <summary>
    /// A restore from a copy (<see cref="RunKind.RestoreFromCopy"/> or <see cref="RunKind.RestoreDrill"/>) whose copy was
    /// checked: its <paramref name="files"/> with the hashes the uploads must match, each saying what it was
    /// <paramref name="checkedAgainst"/>, and the <paramref name="level"/> the copy proved.
    /// </summary>
    public static RunRecord NewCopyRestore(string id, RunKind kind, string trigger, string graphId, string? targetGraphId, string backupId,
        string sourceGraph, string importPath, string? requestDigest, DateTimeOffset? copyMadeAt, RunBackupInfo? backup,
        IEnumerable<(string Name, long Size, string? Md5, string Sha256)> files, string checkedAgainst, CopyLevel? level, DateTimeOffset now)
    {
        if (kind is not (RunKind.RestoreFromCopy or RunKind.RestoreDrill))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "a restore from a copy is a restore-from-copy or a restore-drill run");
        }

        return Traced(new()
        {
            Id = id,
            Kind = kind,
            Trigger = trigger,
            GraphId = graphId,
            TargetGraphId = targetGraphId,
            BackupId = backupId,
            SourceGraph = sourceGraph,
            ImportPath = importPath,
            RequestDigest = requestDigest,
            CopyMadeAt = copyMadeAt,
            Backup = backup,
            Status = RunStatus.Running,
            Step = RunStep.Queued,
            CreatedAt = now,
            UpdatedAt = now,
            RestoredLevel = level,
            Files = [.. files.Select(f => new RunFile { Name = f.Name, Size = f.Size, Md5 = f.Md5, Sha256 = f.Sha256, Verification = checkedAgainst })],
        });
    }

    /// <summary>
    /// A restore drill refused before it uploaded anything (no copy to prove, or the copy refused): recorded at
    /// <paramref name="step"/> (the caller fails it with why), nothing in OBS to clean up.
    /// </summary>
    public static RunRecord NewRefusedDrill(string id, string graphId, string? targetGraphId, string? backupId, DateTimeOffset? copyMadeAt, RunStep step,
        DateTimeOffset now) => Traced(new()
    {
        Id = id,
        Kind = RunKind.RestoreDrill,
        Trigger = "schedule",
        GraphId = graphId,
        TargetGraphId = targetGraphId,
        BackupId = backupId,
        CopyMadeAt = copyMadeAt,
        Status = RunStatus.Running,
        Step = step,
        CreatedAt = now,
        UpdatedAt = now,
        ObsCleanedAt = now, // nothing was uploaded
    });

    /// <summary>The run's trace in the telemetry: the activity that created it.</summary>
    private static RunRecord Traced(RunRecord run)
    {
        run.TraceId = System.Diagnostics.Activity.Current?.TraceId.ToHexString();
        return run;
    }

    /// <summary>A change to the run at <paramref name="now"/> that no transition below names (a poll counted, a file's slice).</summary>
    public void Touch(DateTimeOffset now) => UpdatedAt = now;

    /// <summary>The run's job must end by <paramref name="deadline"/> (set when the job it follows is known).</summary>
    public void ExtendDeadline(DateTimeOffset deadline) => Deadline = deadline;

    /// <summary>The graph's name as GES reports it, kept from the first time it is known.</summary>
    public void NameGraph(string? graphName) => GraphName ??= graphName;

    /// <summary>
    /// A backup run that failed only because a message of its left its queue for <paramref name="poisonQueue"/> (parked, or out
    /// of deliveries: the run's last error names that poison queue) goes on at <paramref name="step"/>: an operator replayed the
    /// message. Its errors stay as history; its end, its copy's level and its notification mark are cleared, so its next end is
    /// decided and announced afresh. Returns why not otherwise (the record is left as it is).
    /// </summary>
    public string? Resume(DateTimeOffset now, string poisonQueue, RunStep step)
    {
        if (Kind != RunKind.Backup)
        {
            return $"run {Id} is a {Kind.Name()} run: a restore or import is started again by a new request, not resumed";
        }

        if (Status != RunStatus.Failed)
        {
            return $"run {Id} ended {Status}, not failed";
        }

        if (Errors.Count == 0 || !Errors[^1].Reason.Contains(poisonQueue, StringComparison.Ordinal))
        {
            return $"run {Id} did not fail because a message of its went to {poisonQueue}";
        }

        Status = RunStatus.Running;
        Step = step;
        CompletedAt = null;
        Copy = null;
        NotificationQueued = false;
        UpdatedAt = now;
        return null;
    }

    /// <summary>The ended run's notification was queued; false when it already was.</summary>
    public bool MarkNotificationQueued()
    {
        if (NotificationQueued)
        {
            return false;
        }

        NotificationQueued = true;
        return true;
    }

    /// <summary>A drill's objects in OBS were deleted; false when they already were.</summary>
    public bool ObsCleaned(DateTimeOffset now)
    {
        if (ObsCleanedAt is not null)
        {
            return false;
        }

        ObsCleanedAt = now;
        UpdatedAt = now;
        return true;
    }

    /// <summary>A restore's uploads were queued: it goes from <c>queued</c> to <c>uploading</c>; false from any other step.</summary>
    public bool UploadsQueued(DateTimeOffset now)
    {
        if (IsFinished || Step != RunStep.Queued)
        {
            return false;
        }

        Step = RunStep.Uploading;
        UpdatedAt = now;
        return true;
    }

    /// <summary>
    /// What one look at a followed operation found: the engine restore's status, the backup an import made (the
    /// imported backup for a restore from a copy); nothing when it said nothing new.
    /// </summary>
    public void RecordOperationDetail(string? detail, DateTimeOffset now)
    {
        if (detail is null)
        {
            return;
        }

        switch (Kind)
        {
            case RunKind.EngineRestore:
                RestoreStatus = detail;
                break;
            case RunKind.RestoreFromCopy or RunKind.RestoreDrill:
                ImportedBackupId = detail;
                break;
            default:
                BackupId = detail;
                break;
        }

        UpdatedAt = now;
    }

    /// <summary>
    /// Claims the right to submit this run's long-running job (add-backup, import) for the message
    /// <paramref name="nonce"/>: refused once a job is recorded or the run ended, and while another
    /// message's claim is younger than <paramref name="lease"/>; the claimant runs at <paramref name="step"/>; the claimant's own redelivery, or anyone
    /// after the lease, takes over. <paramref name="previous"/> is the first earlier claim's time (null: none),
    /// so the new claimant can look for a job any earlier attempt started.
    /// </summary>
    public bool TryClaimSubmission(string nonce, RunStep step, DateTimeOffset now, TimeSpan lease, out DateTimeOffset? previous)
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
        Status = RunStatus.Running;
        Step = step;
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
        if (IsFinished)
        {
            throw new InvalidOperationException($"run {Id} already ended {Status}: it cannot end again as {status}");
        }

        Status = status;
        Step = RunStep.Done;
        CompletedAt = now;
        UpdatedAt = now;
        Copy = CopyTrust.Decide(this);
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
    /// <param name="adopted">The job was found running, not started by this run's own call (see <see cref="JobAdopted"/>).</param>
    public void RecordJob(string jobId, RunStep step, DateTimeOffset now, string? backupId = null, DateTimeOffset? deadline = null, bool adopted = false)
    {
        if (IsFinished || (JobId is not null && JobId != jobId))
        {
            throw new InvalidOperationException($"run {Id} cannot follow job {jobId}: it {(IsFinished ? $"ended {Status}" : $"follows job {JobId}")}");
        }

        JobId = jobId;
        JobAdopted = adopted ? true : JobAdopted;
        BackupId = backupId ?? BackupId;
        Deadline = deadline ?? Deadline;
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
        if (IsFinished)
        {
            throw new InvalidOperationException($"run {Id} ended {Status}: it cannot follow run {leaderId}");
        }

        FollowsRunId = leaderId;
        Step = RunStep.Following;
        UpdatedAt = now;
    }

    /// <summary>Run <paramref name="followerId"/> follows this run's copy of their one GES backup; false when already recorded.</summary>
    public bool Joined(string followerId, DateTimeOffset now)
    {
        if (JoinedBy?.Contains(followerId, StringComparer.Ordinal) == true)
        {
            return false;
        }

        (JoinedBy ??= []).Add(followerId);
        UpdatedAt = now;
        return true;
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
        if (IsFinished)
        {
            throw new InvalidOperationException($"run {Id} ended {Status}: it cannot start copying");
        }

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
    /// <summary>A file of the backup as GES lists it, not yet copied.</summary>
    public static RunFile Listed(string name, long? sizeKb) => new() { Name = name, SizeKb = sizeKb };

    [JsonInclude]
    public string Name { get; internal set; } = "";

    /// <summary>Size GES announced, in KB (rounded).</summary>
    [JsonInclude]
    public long? SizeKb { get; internal set; }

    /// <summary>Exact size in bytes, once the source told it.</summary>
    [JsonInclude]
    public long? Size { get; internal set; }

    [JsonInclude]
    public long BytesCopied { get; internal set; }
    [JsonInclude]
    public RunFileStatus Status { get; internal set; } = RunFileStatus.Pending;
    [JsonInclude]
    public string? Md5 { get; internal set; }
    [JsonInclude]
    public string? Sha256 { get; internal set; }
    [JsonInclude]
    public int Slices { get; internal set; }

    /// <summary>What "verified" rests on for this file: <c>source-md5</c>, <c>second-read</c> or <c>received-only</c> (see docs/internals.md).</summary>
    [JsonInclude]
    public string? Verification { get; internal set; }

    /// <summary>
    /// Why the file could not be checked against its source, when it could not (e.g. the source is server-side
    /// encrypted: its ETag is not an MD5); null for a file checked against its source.
    /// </summary>
    [JsonInclude]
    public string? VerificationNote { get; internal set; }

    /// <summary>Copies started again from scratch because the bytes received did not match the source.</summary>
    [JsonInclude]
    public int ContentRetries { get; internal set; }

    [JsonInclude]
    public DateTimeOffset? StartedAt { get; internal set; }
    [JsonInclude]
    public DateTimeOffset? CompletedAt { get; internal set; }
    [JsonInclude]
    public string? Error { get; internal set; }

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
    public long? Complete(long size, string? md5, string? sha256, string? verification, DateTimeOffset startedAt, DateTimeOffset now,
        string? verificationNote = null)
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
        VerificationNote = verificationNote ?? VerificationNote;
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
