namespace BackupRelay.HuaweiCloud.Emulator;

// The emulator's live resources. Mutable, and only touched under EmulatorState's lock.

public sealed class Graph
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string ProjectId { get; init; }
    public string Status { get; set; } = "200";
    public string DataStoreVersion { get; init; } = "2.3.16";
    public string ProductType { get; init; } = "InMemory";
    public List<long>? BackupFileSizes { get; set; }

    /// <summary>The backup the graph was last started from, if any.</summary>
    public string? RestoredFromBackupId { get; set; }
}

public sealed class Backup
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string GraphId { get; init; }
    public required string GraphName { get; init; }
    public required string ProjectId { get; init; }
    public required string BackupMethod { get; init; }
    public string Status { get; set; } = "backing_up";
    public required DateTimeOffset StartTime { get; init; }
    public DateTimeOffset? EndTime { get; set; }

    /// <summary>Seconds the backup took as GES reports it (not always end − start); null: derived.</summary>
    public long? DurationSeconds { get; init; }
    public required List<BackupFile> Files { get; init; }
    public long TotalBytes => Files.Sum(f => f.Size);
}

public sealed record BackupFile(string Name, long Size);

public sealed class Job
{
    public required string Id { get; init; }
    public required string ProjectId { get; init; }
    public required string GraphId { get; init; }
    public required string GraphName { get; init; }
    public required string JobType { get; init; }
    public required string JobName { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset RunningAt { get; init; }
    public required DateTimeOffset EndsAt { get; init; }
    public string Status { get; set; } = "pending";
    public DateTimeOffset? BeginTime { get; set; }
    public DateTimeOffset? EndTime { get; set; }
    public string? FailReason { get; set; }

    /// <summary>Terminal status this job will reach: success, failed or partiallyFailed.</summary>
    public string Outcome { get; set; } = "success";

    /// <summary>Never leaves <c>running</c> (fault <c>hangJob</c>).</summary>
    public bool Hangs { get; set; }

    /// <summary>Extra output for import jobs (<c>job_detail</c>).</summary>
    public Dictionary<string, string>? Detail { get; set; }

    /// <summary>Applied once, when the job ends; each receives whether it succeeded and when.</summary>
    public List<Action<bool, DateTimeOffset>> EndCallbacks { get; } = [];

    public static bool IsTerminal(string status) => status is "success" or "failed" or "partiallyFailed";
}

public sealed class Engine
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string ProjectId { get; init; }
    public required List<SeedEngineBackup> Backups { get; init; }
    public string RestoreOutcome { get; set; } = "Success";
    public string? LatestJobId { get; set; }
}

public sealed class Restore
{
    public required string Id { get; init; }
    public required string JobId { get; init; }
    public required string EngineId { get; init; }
    public required string BackupId { get; init; }
    public required string BackupName { get; init; }
    public required string Name { get; init; }
    public string? Description { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public required double PhaseSeconds { get; init; }
    public required string Outcome { get; init; }
    public bool Hangs { get; init; }

    /// <summary>Status and progress at <paramref name="now"/>: RecoveringData, RestartingService, then the outcome.</summary>
    public (string Status, int Progress, string Reason) At(DateTimeOffset now)
    {
        var elapsed = (now - StartedAt).TotalSeconds;
        var phase = Math.Max(PhaseSeconds, 0.001);
        if (elapsed < phase || (Hangs && elapsed < phase * 2))
        {
            return ("RecoveringData", (int)Math.Min(49, 50 * elapsed / phase), "");
        }

        if (Outcome == "RecoveringDataFailed")
        {
            return (Outcome, 50, "Failed to restore data from the backup file.");
        }

        if (elapsed < phase * 2 || Hangs)
        {
            return ("RestartingService", (int)Math.Min(99, 50 + (50 * (elapsed - phase) / phase)), "");
        }

        return Outcome == "RestartingServiceFailed"
            ? (Outcome, 90, "The engine service failed to restart.")
            : ("Success", 100, "");
    }

    public bool IsTerminal(DateTimeOffset now) => At(now).Status is not ("RecoveringData" or "RestartingService");
}

public sealed class IssuedToken
{
    public required string UserName { get; init; }
    public required string DomainName { get; init; }
    public required string ProjectId { get; init; }
    public required string ProjectName { get; init; }
    public required DateTimeOffset IssuedAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }
}

/// <param name="BodyBytes">Bytes of the answer's body written (an OBS download's, cut short when the reader went away).</param>
public sealed record RecordedRequest(DateTimeOffset Time, string Method, string Path, int Status, long BodyBytes = 0);
