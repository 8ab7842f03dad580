using System.Text.Json.Serialization;
using BackupRelay.HuaweiCloud.Json;

namespace BackupRelay.HuaweiCloud.Cse;

/// <summary>The CSE restore record (camelCase on the wire).</summary>
public sealed record CseRestoreRecord
{
    public string? Id { get; init; }
    public string? Name { get; init; }
    public string? Description { get; init; }
    public string? EngineId { get; init; }
    public string? BackupId { get; init; }
    public string? BackupName { get; init; }

    /// <summary><c>RecoveringData</c>, <c>RestartingService</c>, <c>RecoveringDataFailed</c>, <c>RestartingServiceFailed</c>, <c>Success</c>, or a value kept as sent.</summary>
    public string? Status { get; init; }

    /// <summary>Percent; sent as a number or a string.</summary>
    [JsonConverter(typeof(FlexibleInt32Converter))]
    public int? Progress { get; init; }

    /// <summary>Restore duration; sent as a number or a string.</summary>
    [JsonConverter(typeof(FlexibleInt64Converter))]
    public long? Time { get; init; }

    public string? Reason { get; init; }

    [JsonIgnore]
    public bool IsFailed => Status is "RecoveringDataFailed" or "RestartingServiceFailed";
}

public sealed record CseRestoreRequest(string Name, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Description);

/// <summary><c>GET /v2/{project_id}/enginemgr/engines/{engine_id}</c>.</summary>
public sealed record CseEngine
{
    public string? Id { get; init; }
    public string? Name { get; init; }

    /// <summary><c>Available</c>, <c>Unavailable</c>, <c>Creating</c>, <c>Upgrading</c>, <c>Modifying</c>, ...</summary>
    public string? Status { get; init; }

    public string? LatestJobId { get; init; }
}

/// <summary>An engine job: <c>Init</c>, <c>Executing</c>, <c>Error</c>, <c>Timeout</c>, <c>Finished</c>.</summary>
public sealed record CseEngineJob
{
    public string? Id { get; init; }
    public string? Status { get; init; }
    public string? Type { get; init; }
    public string? BeginTime { get; init; }
    public string? EndTime { get; init; }
    public string? Reason { get; init; }

    [JsonIgnore]
    public bool IsTerminal => Status is "Error" or "Timeout" or "Finished";
}
