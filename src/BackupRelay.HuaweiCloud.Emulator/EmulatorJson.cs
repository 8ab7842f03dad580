using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BackupRelay.HuaweiCloud.Emulator;

// Wire shapes the emulator writes. GES v2, IAM and the CSE engine-manager APIs are snake_case;
// the CSE restore record and the admin API are camelCase: two contexts, one per naming.

public sealed record AddBackupResponse(string JobId, string? BackupId);
public sealed record JobIdResponse(string JobId);
public sealed record EmptyResponse;

public sealed record BackupDto(
    string Id, string Name, string BackupMethod, string GraphId, string GraphName, string GraphStatus,
    string GraphSizeTypeIndex, string DataStoreVersion, string Arch, string Status,
    long StartTimestamp, string StartTime, string ProductType, long? EndTimestamp, string? EndTime, long Size, long Duration, bool? Encrypted);

public sealed record BackupListResponse(int BackupCount, List<BackupDto> BackupList);

public sealed record BackupFileDto(string Name, long Size, string DownloadLink, string LinkExpiredTime);
public sealed record BackupFilesResponse(string Bucket, List<BackupFileDto> Files);

public sealed record JobDto(
    string JobId, string Status, string JobType, string JobName, string RelatedGraph, string? BeginTime,
    string? EndTime, double JobProgress, Dictionary<string, string>? JobDetail, string? FailReason);

public sealed record JobListResponse(int JobCount, List<JobDto> JobList);

public sealed record GraphDto(string Id, string Name, string Status, string ProjectId, string GraphSizeTypeIndex,
    string Arch, string DataStoreVersion, string? RestoredFromBackupId);
public sealed record GraphResponse(GraphDto Graph);

public sealed record ErrorBody(string ErrorCode, string ErrorMsg, string? RequestId);
public sealed record DetailedErrorBody(string ErrorCode, string ErrorMsg, string Detail);

public sealed record NamedRef(string Id, string Name);
public sealed record DomainRef(string Id, string Name);
public sealed record ProjectRef(string Id, string Name, DomainRef Domain);
public sealed record UserRef(string Id, string Name, DomainRef Domain);
public sealed record TokenDto(string ExpiresAt, string IssuedAt, List<string> Methods, ProjectRef Project, UserRef User);
public sealed record TokenResponse(TokenDto Token);

public sealed record EngineDto(string Id, string Name, string Status, string? LatestJobId, string ProjectId);
public sealed record EngineJobDto(string Id, string EngineId, string Type, string Status, string BeginTime, string? EndTime, string? Reason);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AddBackupResponse))]
[JsonSerializable(typeof(JobIdResponse))]
[JsonSerializable(typeof(EmptyResponse))]
[JsonSerializable(typeof(BackupListResponse))]
[JsonSerializable(typeof(BackupFilesResponse))]
[JsonSerializable(typeof(JobDto))]
[JsonSerializable(typeof(JobListResponse))]
[JsonSerializable(typeof(GraphResponse))]
[JsonSerializable(typeof(GraphDto))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(DetailedErrorBody))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(EngineDto))]
[JsonSerializable(typeof(EngineJobDto))]
internal sealed partial class SnakeJson : JsonSerializerContext
{
    /// <summary>As the real services write: '&amp;' and '+' in links stay literal, not \u0026.</summary>
    private static SnakeJson? s_wire;

    // Built on first use: the generated default options are initialized in another part of this class.
    public static SnakeJson Wire => s_wire ??= new(new JsonSerializerOptions(Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}

public sealed record RestoreRecordDto(string Id, string Name, string? Description, string EngineId, string BackupId,
    string BackupName, string Status, int Progress, long Time, string Reason);
public sealed record CamelErrorBody(string ErrorCode, string ErrorMessage);
public sealed record KeystoneError(int Code, string Message, string Title);
public sealed record KeystoneErrorBody(KeystoneError Error);

public sealed record GraphStatusRequest(string Status);
public sealed record ClockAdvanceRequest(double Seconds);
public sealed record ClockResponse(DateTimeOffset Now, double OffsetSeconds);

public sealed record StateSnapshot(
    DateTimeOffset Now,
    List<GraphDto> Graphs,
    List<BackupDto> Backups,
    List<JobDto> Jobs,
    List<EngineDto> Engines,
    List<RestoreRecordDto> Restores,
    int ActiveTokens);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    PropertyNameCaseInsensitive = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true)]
[JsonSerializable(typeof(RestoreRecordDto))]
[JsonSerializable(typeof(CamelErrorBody))]
[JsonSerializable(typeof(KeystoneErrorBody))]
[JsonSerializable(typeof(EmulatorSeed))]
[JsonSerializable(typeof(EmulatorSettings))]
[JsonSerializable(typeof(SeedGraph))]
[JsonSerializable(typeof(SeedEngine))]
[JsonSerializable(typeof(FaultSpec))]
[JsonSerializable(typeof(List<FaultSpec>))]
[JsonSerializable(typeof(List<RecordedRequest>))]
[JsonSerializable(typeof(GraphStatusRequest))]
[JsonSerializable(typeof(ClockAdvanceRequest))]
[JsonSerializable(typeof(ClockResponse))]
[JsonSerializable(typeof(StateSnapshot))]
internal sealed partial class CamelJson : JsonSerializerContext
{
    private static CamelJson? s_wire;

    // Built on first use: the generated default options are initialized in another part of this class.
    public static CamelJson Wire => s_wire ??= new(new JsonSerializerOptions(Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
