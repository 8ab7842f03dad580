using System.Text.Json.Serialization;
using BackupRelay.HuaweiCloud.Auth;
using BackupRelay.HuaweiCloud.Cse;
using BackupRelay.HuaweiCloud.Ges;

namespace BackupRelay.HuaweiCloud.Json;

/// <summary>GES v2, IAM and CSE engine-manager wire format: snake_case.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(AddBackupResult))]
[JsonSerializable(typeof(JobIdResult))]
[JsonSerializable(typeof(GesBackupPage))]
[JsonSerializable(typeof(GesBackupFiles))]
[JsonSerializable(typeof(GesJob))]
[JsonSerializable(typeof(GesJobPage))]
[JsonSerializable(typeof(GesGraphResponse))]
[JsonSerializable(typeof(ImportBackupRequest))]
[JsonSerializable(typeof(EmptyBody))]
[JsonSerializable(typeof(CseEngine))]
[JsonSerializable(typeof(CseEngineJob))]
[JsonSerializable(typeof(IamTokenRequest))]
[JsonSerializable(typeof(IamTokenResponse))]
internal sealed partial class HuaweiSnakeJson : JsonSerializerContext;

/// <summary>The CSE restore API: camelCase.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CseRestoreRecord))]
[JsonSerializable(typeof(CseRestoreRequest))]
internal sealed partial class HuaweiCamelJson : JsonSerializerContext;
