using System.Text.Json.Serialization;
using BackupRelay.Copying;
using BackupRelay.Runs;

namespace BackupRelay.Messaging;

// Queue messages. Each carries a version ("v"); none carries a secret (no token, no link).

/// <summary><c>backup-start</c>: start (or adopt) the backup of one graph for one run.</summary>
/// <param name="Nonce">Unique per message (not per delivery): a redelivery recognises its own claim on the run.</param>
public sealed record StartBackupMessage(int V, string RunId, string GraphId, string Trigger, DateTimeOffset? ScheduledAt, string? Nonce = null) : IRunMessage;

/// <summary><c>backup-poll</c>: look at the run's GES job once.</summary>
public sealed record PollBackupJobMessage(int V, string RunId, int Attempt) : IRunMessage;

/// <summary><c>backup-copy</c>: copy one slice of one file of the run.</summary>
/// <param name="Attempt">0 for the first copy of the file; n after n copies from scratch whose bytes did not match the source.</param>
public sealed record CopyBackupFileMessage(int V, string RunId, string File, CopyContinuation? Continuation, int Attempt = 0) : IRunMessage;

/// <summary><c>restore-upload</c>: upload one slice of one file of a restore-from-copy run to OBS.</summary>
/// <param name="Offset">Bytes of the file read and hashed when this slice was queued (0 for the first).</param>
/// <param name="Nonce">Unique per message (not per delivery): a redelivery recognises its own claim to start the import.</param>
/// <param name="ReadBack">A drill's object uploaded: read it back from this offset (null: the upload goes on at <paramref name="Offset"/>).</param>
public sealed record RestoreUploadMessage(int V, string RunId, string File, long Offset = 0, string? Nonce = null, long? ReadBack = null) : IRunMessage;

/// <summary><c>operation-poll</c>: look once at a restore's or an import's progress.</summary>
public sealed record PollOperationMessage(int V, string RunId, int Attempt) : IRunMessage;

/// <summary>What a parked (poison) message carries: why it was parked, and the message as received.</summary>
/// <summary>
/// One outgoing notification: <paramref name="Event"/> is the JSON body as it will be posted (built
/// when the event happened), <paramref name="EventId"/> makes it idempotent for the receiver.
/// </summary>
public sealed record NotifyMessage(int V, string EventId, string Event, int Attempt = 0);

/// <summary>A message parked in a poison queue: why, when, and its text (cut to fit the queue: then <c>OriginalLength</c> says how long it was).</summary>
public sealed record ParkedMessage(string Function, string Reason, DateTimeOffset ParkedAt, string? Message, int? OriginalLength = null);

/// <summary>The manifest written beside the copied files.</summary>
public sealed record BackupManifest(
    int Version,
    string RunId,
    string GraphId,
    string? GraphName,
    RunBackupInfo? Backup,
    string? JobId,
    DateTimeOffset? StartedAt,
    DateTimeOffset CompletedAt,
    IReadOnlyList<ManifestFile> Files);

/// <param name="Verification">What "verified" rests on: <c>source-md5</c>, <c>second-read</c> or <c>received-only</c>.</param>
public sealed record ManifestFile(string Name, long Size, string? Md5, string Sha256, DateTimeOffset? StartedAt, DateTimeOffset? CompletedAt, int Slices,
    string? Verification = null);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    PropertyNameCaseInsensitive = true,
    WriteIndented = false)]
[JsonSerializable(typeof(StartBackupMessage))]
[JsonSerializable(typeof(PollBackupJobMessage))]
[JsonSerializable(typeof(CopyBackupFileMessage))]
[JsonSerializable(typeof(ParkedMessage))]
[JsonSerializable(typeof(NotifyMessage))]
[JsonSerializable(typeof(PollOperationMessage))]
[JsonSerializable(typeof(RestoreUploadMessage))]
[JsonSerializable(typeof(BackupManifest))]
[JsonSerializable(typeof(BackupRelay.Freshness.GraphStatus))]
[JsonSerializable(typeof(List<BackupRelay.Freshness.GraphStatus>))]
[JsonSerializable(typeof(PoisonReplayAnswer))]
public sealed partial class BackupRelayJson : JsonSerializerContext;
