using System.Text.Json.Serialization;
using BackupRelay.Copying;

namespace BackupRelay.Runs;

/// <summary>
/// What a backup run's copy proves, from most to least. Stored and served as the names below; docs/operations.md
/// ("What a copy proves") says what shows each level and what a restore does with it.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<CopyLevel>))]
public enum CopyLevel
{
    /// <summary>Every file of the backup is in the copy, and each was checked against a checksum its source declared.</summary>
    [JsonStringEnumMemberName("verified")] Verified,

    /// <summary>
    /// Every file is in the copy, but at least one could not be checked against its source (no checksum declared,
    /// an ETag that is not an MD5, or only a second read agreeing with the first): a corruption at the source's
    /// side or in transit would not have been noticed.
    /// </summary>
    [JsonStringEnumMemberName("received-only")] ReceivedOnly,

    /// <summary>At least one file of the backup is not in the copy (the run failed or partially failed).</summary>
    [JsonStringEnumMemberName("incomplete")] Incomplete,
}

/// <summary>
/// A backup run's copy as the run record holds it once the run ended: its <see cref="CopyLevel"/>, the files
/// that keep it from being verified (<paramref name="Unchecked"/>: name and why) and the files not copied
/// (<paramref name="Missing"/>). Decided once, by <see cref="Decide"/>, when the run ends; everything that asks
/// "is this copy safe?" (freshness, health, alerts, metrics, notifications, restores, drills) reads it.
/// </summary>
public sealed record CopyTrust(CopyLevel Level, IReadOnlyList<string> Unchecked, IReadOnlyList<string> Missing)
{
    [JsonIgnore]
    public bool IsVerified => Level == CopyLevel.Verified;

    /// <summary>One sentence for messages, logs and notifications: the level and what keeps it there.</summary>
    [JsonIgnore]
    public string Summary => Level switch
    {
        CopyLevel.Verified => "verified: every file checked against the checksum its source declared",
        CopyLevel.ReceivedOnly => $"received-only: not checked against the source: {string.Join("; ", Unchecked)}",
        _ => Missing.Count == 0 ? "incomplete: no file was copied" : $"incomplete: not copied: {string.Join(", ", Missing)}",
    };

    /// <summary>The level of an ended backup run's copy, from its status and its files (null for other runs and unended ones).</summary>
    public static CopyTrust? Decide(RunRecord run)
    {
        if (run.Kind != RunKind.Backup || !run.IsFinished)
        {
            return null;
        }

        var missing = run.Files.Where(f => f.Status != RunFileStatus.Completed).Select(f => f.Name).ToList();
        if (run.Status != RunStatus.Succeeded || run.Files.Count == 0 || missing.Count > 0)
        {
            return new CopyTrust(CopyLevel.Incomplete, [], missing);
        }

        var @unchecked = run.Files.Where(f => !Verification.IsAgainstSource(f.Verification))
            .Select(f => $"{f.Name} ({f.Verification ?? "no verification recorded"}{(f.VerificationNote is { } note ? $": {note}" : "")})")
            .ToList();
        return new CopyTrust(@unchecked.Count == 0 ? CopyLevel.Verified : CopyLevel.ReceivedOnly, @unchecked, []);
    }
}
