using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;

namespace BackupRelay.Copying;

/// <summary>
/// The one mapping from names that come from outside (a GES graph's name, a backup id, a file name, a request's
/// folder) to paths in the destination: <c>&lt;folder&gt;/&lt;backup id&gt;/&lt;file&gt;</c>, each part one path
/// segment of at most 128 of <c>A-Z a-z 0-9 . _ ~ -</c> starting with a letter or digit (so never <c>..</c>, a
/// slash, a backslash, a control character or a non-ASCII one). A part that is not such a segment never reaches a
/// path: a GES graph name falls back to the graph's id (deterministic, so restores and drills find the same folder),
/// anything else is refused. The destinations check every path they are given against the same rule.
/// </summary>
public static class CopyPaths
{
    /// <summary>Whether <paramref name="name"/> can be one segment of a path in the destination (or of a blob name in the run store).</summary>
    public static bool IsSafeSegment(string? name) => HuaweiCloudIds.IsValidId(name);

    /// <summary>
    /// The graph's folder: its configured <c>Backup__Graphs__N__Name</c> (checked at start-up), else its name as GES
    /// reports it when that is a safe segment, else its id.
    /// </summary>
    public static string Folder(BackupOptions options, string graphId, string? gesName) =>
        options.Find(graphId)?.Name ?? (IsSafeSegment(gesName) ? gesName! : graphId);

    /// <summary>A backup's folder: <c>&lt;folder&gt;/&lt;backup id&gt;</c>.</summary>
    public static string Backup(string folder, string backupId) => $"{Segment(folder, "graph folder")}/{Segment(backupId, "backup id")}";

    /// <summary>A file of a backup: <c>&lt;folder&gt;/&lt;backup id&gt;/&lt;file&gt;</c>.</summary>
    public static string File(string folder, string backupId, string file) => $"{Backup(folder, backupId)}/{Segment(file, "file name")}";

    /// <summary>
    /// A path a destination is asked for: every segment safe (the check the destinations make before any request or
    /// file operation, whoever built the path). Names under <c>.backuprelay/</c> are the app's own.
    /// </summary>
    public static string Checked(string path)
    {
        var segments = path.Split('/');
        return segments.Length > 0 && segments.All(s => IsSafeSegment(s) || (s == ".backuprelay" && segments[0] == s))
            ? path
            : throw new ArgumentException($"'{Printable(path)}' is not a path of safe names ({Rule}).", nameof(path));
    }

    private const string Rule = "each part 1-128 of A-Z a-z 0-9 . _ ~ -, starting with a letter or digit";

    private static string Segment(string name, string what) =>
        IsSafeSegment(name) ? name : throw new ArgumentException($"The {what} '{Printable(name)}' cannot name a path ({Rule}).", nameof(name));

    /// <summary>A name for a message: control characters shown as '?', cut to 200 characters.</summary>
    public static string Printable(string? name)
    {
        var text = new string([.. (name ?? "").Take(200).Select(c => char.IsControl(c) ? '?' : c)]);
        return (name?.Length ?? 0) > 200 ? text + "…" : text;
    }
}
