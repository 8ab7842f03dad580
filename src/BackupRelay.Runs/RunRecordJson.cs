using System.Text.Json.Serialization;

namespace BackupRelay.Runs;

/// <summary>
/// Run records as stored and served (the same options as the app's other JSON). Here, beside the record, because
/// the source generator must see the record's internal setters.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    PropertyNameCaseInsensitive = true,
    WriteIndented = false)]
[JsonSerializable(typeof(RunRecord))]
[JsonSerializable(typeof(List<RunRecord>))]
public sealed partial class RunRecordJson : JsonSerializerContext;
