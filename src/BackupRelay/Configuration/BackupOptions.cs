using System.ComponentModel.DataAnnotations;

namespace BackupRelay.Configuration;

/// <summary>What to back up and when (app settings <c>Backup__*</c>).</summary>
public sealed class BackupOptions
{
    public const string SectionName = "Backup";

    /// <summary>NCRONTAB, six fields with seconds (UTC), as the Functions timer trigger reads it. Default: daily at 02:00.</summary>
    [Required]
    public string Schedule { get; set; } = "0 0 2 * * *";

    /// <summary>The graphs to back up: <c>Backup__Graphs__0__GraphId</c>, ...</summary>
    public List<GraphOptions> Graphs { get; set; } = [];

    /// <summary>First wait before polling a backup job.</summary>
    public TimeSpan PollInitialDelay { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Wait between two polls of a restore or an import (a GES import job, a CSE restore), from the first: constant, not
    /// backing off, so an operator waiting on a restore sees its end within this much of the job's end. One GES or CSE
    /// read per running operation per interval (20 a minute at the default), well within their rate limits.
    /// </summary>
    public TimeSpan OperationPollInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Longest wait between two polls (the wait doubles up to this).</summary>
    public TimeSpan PollMaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A backup job still unfinished this long after the run started fails the run.</summary>
    public TimeSpan JobDeadline { get; set; } = TimeSpan.FromHours(6);

    /// <summary>
    /// Finished run records older than this are deleted (checked hourly); 0 keeps them forever. The copies
    /// themselves are untouched (the destination's lifecycle rules decide theirs).
    /// </summary>
    public TimeSpan RunRetention { get; set; } = TimeSpan.FromDays(400);

    /// <summary>
    /// A run whose record has not changed for this long is failed by the run housekeeping, naming its step: no
    /// message can still be working on it (it must exceed host.json's <c>maxDequeueCount</c> × (<c>functionTimeout</c> +
    /// <c>visibilityTimeout</c>) + <see cref="PollMaxDelay"/>, checked at start-up), so nothing else would end it.
    /// Also the longest a copy message may wait in a queue behind others; raise it for very long queues.
    /// </summary>
    public TimeSpan QuietRunLimit { get; set; } = TimeSpan.FromHours(6);

    /// <summary>How far before the submit time a backup's start may lie and still be this run's (clock skew).</summary>
    public TimeSpan ClockSkewAllowance { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Gap between the starts one schedule tick queues (graph i starts i × this after the tick), so a
    /// tick over hundreds of graphs paces its add-backup calls instead of sending them in one burst.
    /// </summary>
    public TimeSpan StartInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Wait before poll number <paramref name="attempt"/>: the initial delay doubled each time, at most the maximum.</summary>
    public TimeSpan PollDelay(int attempt) =>
        TimeSpan.FromTicks(Math.Min(PollMaxDelay.Ticks, PollInitialDelay.Ticks * (1L << Math.Clamp(attempt, 0, 30))));
    /// <summary>
    /// The graph's folder in the destination — the one rule for writing copies and for finding them again
    /// (<see cref="Copying.CopyPaths.Folder"/>): its configured <c>Name</c>, else its GES name when that is a safe
    /// path segment, else its id.
    /// </summary>
    public string CopyFolder(string graphId, string? gesName) => Copying.CopyPaths.Folder(this, graphId, gesName);


    public GraphOptions? Find(string graphId) => Graphs.FirstOrDefault(g => string.Equals(g.GraphId, graphId, StringComparison.Ordinal));
}
public sealed class GraphOptions
{
    [Required]
    public string GraphId { get; set; } = "";

    /// <summary>Folder name at the destination; default: the graph's name as GES reports it.</summary>
    public string? Name { get; set; }

    /// <summary>Per-graph job deadline; default <see cref="BackupOptions.JobDeadline"/>.</summary>
    public TimeSpan? JobDeadline { get; set; }

    /// <summary>
    /// How old the newest verified copy may get before the graph is stale; default twice the
    /// schedule's interval plus the job deadline.
    /// </summary>
    public TimeSpan? FreshnessThreshold { get; set; }

    /// <summary>Scheduled restore drills of this graph's newest verified copy (<c>Backup__Graphs__N__Drill__*</c>); off when unset.</summary>
    public DrillOptions? Drill { get; set; }

    /// <summary>True when this graph has a drill schedule.</summary>
    public bool DrillScheduled => !string.IsNullOrWhiteSpace(Drill?.Schedule);
}
/// <summary>
/// A restore drill: on each occurrence of <see cref="Schedule"/>, the graph's newest verified copy is
/// restored into <see cref="TargetGraphId"/> (a graph the drill may overwrite) through the same path as
/// <c>POST /api/graphs/{id}/restores</c>; the graph is <c>RestoreUnproven</c> when the last drill failed or
/// none passed within <see cref="Threshold"/>.
/// </summary>
public sealed class DrillOptions
{
    /// <summary>NCRONTAB (six fields with seconds, or five), UTC. Unset: no drills.</summary>
    public string? Schedule { get; set; }

    /// <summary>The GES graph each drill imports into (overwritten); required with a schedule, never a configured source graph.</summary>
    public string? TargetGraphId { get; set; }

    /// <summary>How long a passed drill proves the graph restorable; default twice the drill schedule's interval.</summary>
    public TimeSpan? Threshold { get; set; }

    /// <summary>
    /// The longest a restore of this graph may take (webhook to imported): when the last passed drill took longer, or the
    /// estimated time to restore the newest copy exceeds it, the graph is <c>RestoreTooSlow</c>. Unset: no target.
    /// </summary>
    public TimeSpan? RestoreTarget { get; set; }
}
/// <summary>Where copied backups land (app settings <c>Destination__*</c>).</summary>
public sealed class DestinationOptions
{
    public const string SectionName = "Destination";

    /// <summary>Name of the storage connection setting (connection string or identity group); default <c>Destination</c>.</summary>
    public string Connection { get; set; } = "Destination";

    /// <summary>Container that receives <c>&lt;graph&gt;/&lt;backup id&gt;/&lt;file&gt;</c>.</summary>
    public string Container { get; set; } = "ges-backups";

    /// <summary>A local directory instead of Azure Blob Storage (local runs, users without Azure).</summary>
    public string? LocalDirectory { get; set; }

    /// <summary>
    /// The container keeps committed blobs unchangeable (a time-based immutability policy; infra sets this when
    /// <c>immutabilityDays</c> &gt; 0). Every file is then committed once, already verified, with its hashes and
    /// metadata; nothing is changed or deleted after. Default false.
    /// </summary>
    public bool WriteOnce { get; set; }
}
