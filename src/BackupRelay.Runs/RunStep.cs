using System.Collections.Frozen;
using System.Reflection;
using System.Text.Json.Serialization;

namespace BackupRelay.Runs;

/// <summary>
/// Where a run is in its life (<see cref="RunRecord.Step"/>). Stored and served as the kebab-case names
/// below (as before these were an enum, so records written by earlier versions read the same); a run of
/// each kind goes through them in this order:
/// <list type="bullet">
/// <item>backup: <see cref="Queued"/> → <see cref="Starting"/> → <see cref="BackingUp"/> → <see cref="Copying"/>
/// (or <see cref="Following"/> another run that copies the same GES backup) → <see cref="Done"/>.</item>
/// <item>restore from a copy, restore drill: <see cref="Queued"/> → (<see cref="Checking"/> failures only) →
/// <see cref="Uploading"/> (→ <see cref="Verifying"/> for a drill) → <see cref="Importing"/> → <see cref="Done"/>.</item>
/// <item>import from OBS: <see cref="Importing"/> → <see cref="Done"/>; CSE engine restore: <see cref="Restoring"/> → <see cref="Done"/>.</item>
/// </list>
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<RunStep>))]
public enum RunStep
{
    [JsonStringEnumMemberName("queued")] Queued,
    [JsonStringEnumMemberName("starting")] Starting,
    [JsonStringEnumMemberName("backing-up")] BackingUp,
    [JsonStringEnumMemberName("following")] Following,
    [JsonStringEnumMemberName("copying")] Copying,
    [JsonStringEnumMemberName("checking")] Checking,
    [JsonStringEnumMemberName("uploading")] Uploading,
    [JsonStringEnumMemberName("verifying")] Verifying,
    [JsonStringEnumMemberName("importing")] Importing,
    [JsonStringEnumMemberName("restoring")] Restoring,
    [JsonStringEnumMemberName("done")] Done,
}

/// <summary>What a run does. Stored and served as the names below.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RunKind>))]
public enum RunKind
{
    /// <summary>A GES backup, copied to the destination.</summary>
    [JsonStringEnumMemberName("backup")] Backup,

    /// <summary>A CSE engine restored from one of its backups.</summary>
    [JsonStringEnumMemberName("restore")] EngineRestore,

    /// <summary>A GES backup imported from OBS.</summary>
    [JsonStringEnumMemberName("import")] Import,

    /// <summary>A verified copy uploaded from the destination to OBS, then imported into a GES graph.</summary>
    [JsonStringEnumMemberName("restore-from-copy")] RestoreFromCopy,

    /// <summary>A scheduled restore-from-copy of a graph's newest verified copy into its drill target.</summary>
    [JsonStringEnumMemberName("restore-drill")] RestoreDrill,
}

/// <summary>
/// The stored names of <see cref="RunStep"/>, <see cref="RunKind"/> and <see cref="CopyLevel"/> outside JSON (index metadata, log
/// fields, telemetry tags, error records), read from the same attributes the JSON serialiser uses.
/// </summary>
public static class RunNames
{
    private static readonly FrozenDictionary<RunStep, string> Steps = Names<RunStep>();
    private static readonly FrozenDictionary<RunKind, string> Kinds = Names<RunKind>();
    private static readonly FrozenDictionary<string, RunStep> StepsByName = Steps.ToFrozenDictionary(p => p.Value, p => p.Key);
    private static readonly FrozenDictionary<string, RunKind> KindsByName = Kinds.ToFrozenDictionary(p => p.Value, p => p.Key);
    private static readonly FrozenDictionary<CopyLevel, string> Levels = Names<CopyLevel>();
    private static readonly FrozenDictionary<string, CopyLevel> LevelsByName = Levels.ToFrozenDictionary(p => p.Value, p => p.Key);

    public static string Name(this RunStep step) => Steps[step];

    public static string Name(this RunKind kind) => Kinds[kind];

    public static bool TryParseStep(string? name, out RunStep step) => StepsByName.TryGetValue(name ?? "", out step);

    public static bool TryParseKind(string? name, out RunKind kind) => KindsByName.TryGetValue(name ?? "", out kind);

    public static string Name(this CopyLevel level) => Levels[level];

    public static bool TryParseCopyLevel(string? name, out CopyLevel level) => LevelsByName.TryGetValue(name ?? "", out level);

    private static FrozenDictionary<T, string> Names<T>() where T : struct, Enum =>
        Enum.GetValues<T>().ToFrozenDictionary(v => v,
            v => typeof(T).GetField(v.ToString())!.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()!.Name);
}
