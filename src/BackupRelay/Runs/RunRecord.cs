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
    /// <summary>
    /// <c>backup</c>, <c>restore</c> (CSE engine), <c>import</c> (GES backup from OBS), <c>restore-from-copy</c>
    /// (a verified copy uploaded from Azure to OBS, then imported into a GES graph) or <c>restore-drill</c>
    /// (a scheduled restore-from-copy of a graph's newest verified copy into its drill target).
    /// </summary>
    public string Kind { get; set; } = "backup";

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

    /// <summary>What the run is doing now: one of <see cref="RunSteps"/>.</summary>
    public string Step { get; set; } = RunSteps.Queued;

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
    /// after the lease, takes over. <paramref name="previous"/> is the earlier claim's time (null: none),
    /// so the new claimant can look for a job the earlier attempt started.
    /// </summary>
    public bool TryClaimSubmission(string nonce, DateTimeOffset now, TimeSpan lease, out DateTimeOffset? previous)
    {
        previous = null;
        if (IsFinished || JobId is not null
            || (SubmitClaim is { } holder && holder != nonce && SubmittedAt is { } at && now - at < lease))
        {
            return false;
        }

        previous = SubmittedAt;
        SubmitClaim = nonce;
        SubmittedAt = now;
        UpdatedAt = now;
        return true;
    }

    public void Fail(DateTimeOffset now, string step, string reason, RunStatus status = RunStatus.Failed)
    {
        Status = status;
        Step = RunSteps.Done;
        CompletedAt = now;
        Errors.Add(new RunError(now, step, reason));
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
}

public sealed record RunError(DateTimeOffset Time, string Step, string Reason);
