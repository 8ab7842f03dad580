using System.Text.Json;
using System.Text.Json.Serialization;
using BackupRelay.HuaweiCloud.Json;

namespace BackupRelay.HuaweiCloud.Ges;

/// <summary>Add-backup answer: <c>job_id</c>, and <c>backup_id</c> where the region returns it.</summary>
public sealed record AddBackupResult(string JobId, string? BackupId);

public sealed record JobIdResult(string JobId);

/// <summary>One page of <c>GET .../backups</c>.</summary>
public sealed record GesBackupPage(int BackupCount, IReadOnlyList<GesBackup>? BackupList)
{
    /// <summary>The page's backups; a 200 answer without <c>backup_list</c> (none yet) reads as an empty list.</summary>
    public IReadOnlyList<GesBackup> BackupList { get; init; } = BackupList ?? [];
}

/// <summary>A GES backup as listed. Every field is optional on the wire; unknown values are kept as text.</summary>
public sealed record GesBackup
{
    public string Id { get; init; } = "";
    public string? Name { get; init; }

    /// <summary><c>auto</c>, <c>manual</c> or <c>import</c>.</summary>
    public string? BackupMethod { get; init; }

    public string? GraphId { get; init; }
    public string? GraphName { get; init; }
    public string? GraphStatus { get; init; }
    public string? GraphSizeTypeIndex { get; init; }
    public string? DataStoreVersion { get; init; }
    public string? Arch { get; init; }

    /// <summary><c>backing_up</c>, <c>success</c> or <c>failed</c>.</summary>
    public string? Status { get; init; }

    [JsonConverter(typeof(FlexibleInt64Converter))]
    public long? StartTimestamp { get; init; }

    public string? StartTime { get; init; }

    [JsonConverter(typeof(FlexibleInt64Converter))]
    public long? EndTimestamp { get; init; }

    public string? EndTime { get; init; }

    /// <summary>Size in megabytes.</summary>
    [JsonConverter(typeof(FlexibleInt64Converter))]
    public long? Size { get; init; }

    /// <summary>Duration in seconds.</summary>
    [JsonConverter(typeof(FlexibleInt64Converter))]
    public long? Duration { get; init; }

    public string? ProductType { get; init; }
    public bool? Encrypted { get; init; }

    [JsonIgnore]
    public DateTimeOffset? StartedAt => HuaweiTime.FromTimestampOrText(StartTimestamp, StartTime);

    [JsonIgnore]
    public DateTimeOffset? EndedAt => HuaweiTime.FromTimestampOrText(EndTimestamp, EndTime);
}

/// <summary><c>GET .../backup-files?backup_id=</c>.</summary>
public sealed record GesBackupFiles(string? Bucket, IReadOnlyList<GesBackupFile> Files);

public sealed record GesBackupFile
{
    public string Name { get; init; } = "";

    /// <summary>Size in kilobytes (rounded): a hint, not the exact byte count.</summary>
    [JsonConverter(typeof(FlexibleInt64Converter))]
    public long? Size { get; init; }

    /// <summary>Pre-signed OBS URL. A secret: never log it, send it byte for byte.</summary>
    public string DownloadLink { get; init; } = "";

    public string? LinkExpiredTime { get; init; }

    /// <summary>When the link stops working: the parsed expiry, never later than fetched + 3600 s.</summary>
    public DateTimeOffset ExpiresAt(DateTimeOffset fetchedAt)
    {
        var fallback = fetchedAt.AddSeconds(3600);
        return HuaweiTime.Parse(LinkExpiredTime) is { } parsed && parsed < fallback ? parsed : fallback;
    }
}

/// <summary>GES job status values; anything else is <see cref="Unknown"/> and treated as not finished.</summary>
public enum GesJobState
{
    Unknown,
    Pending,
    Running,
    Waiting,
    Success,
    Failed,
    PartiallyFailed,
}

/// <summary><c>GET .../jobs/{job_id}/status</c>, also the items of the job list.</summary>
public sealed record GesJob
{
    public string JobId { get; init; } = "";

    /// <summary>The raw status text, kept as sent.</summary>
    public string? Status { get; init; }

    public string? JobType { get; init; }
    public string? JobName { get; init; }

    /// <summary>The graph's NAME, not its id.</summary>
    public string? RelatedGraph { get; init; }

    public string? BeginTime { get; init; }
    public string? EndTime { get; init; }
    public JsonElement? JobDetail { get; init; }
    public string? FailReason { get; init; }

    /// <summary>Reserved by GES and unused: not progress.</summary>
    public JsonElement? JobProgress { get; init; }

    [JsonIgnore]
    public GesJobState State => Status switch
    {
        "pending" => GesJobState.Pending,
        "running" => GesJobState.Running,
        "waiting" => GesJobState.Waiting,
        "success" => GesJobState.Success,
        "failed" => GesJobState.Failed,
        "partiallyFailed" => GesJobState.PartiallyFailed,
        _ => GesJobState.Unknown,
    };

    [JsonIgnore]
    public bool IsTerminal => State is GesJobState.Success or GesJobState.Failed or GesJobState.PartiallyFailed;

    [JsonIgnore]
    public DateTimeOffset? BeganAt => HuaweiTime.Parse(BeginTime);

    [JsonIgnore]
    public DateTimeOffset? EndedAt => HuaweiTime.Parse(EndTime);
}

public sealed record GesJobPage(int JobCount, IReadOnlyList<GesJob> JobList);

/// <summary>Filters of the job list; dates are whole days.</summary>
public sealed record GesJobQuery(string? Status = null, string? GraphName = null, DateOnly? StartDate = null, DateOnly? EndDate = null);

public sealed record GesGraphResponse(GesGraph Graph);

public sealed record GesGraph
{
    public string Id { get; init; } = "";
    public string? Name { get; init; }

    /// <summary>Status code as text: 200 running, 900 stopped, 903 being backed up, ...</summary>
    public string? Status { get; init; }
}

public sealed record ImportBackupRequest(string ImportPath);
public sealed record EmptyBody;
