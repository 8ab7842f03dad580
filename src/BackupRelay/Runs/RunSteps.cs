namespace BackupRelay.Runs;

/// <summary>
/// Where a run is in its life (<see cref="RunRecord.Step"/>), and the step a <see cref="RunError"/> names. Stored
/// and served as these strings; a run of each kind goes through them in this order:
/// <list type="bullet">
/// <item>backup: <see cref="Queued"/> → <see cref="Starting"/> → <see cref="BackingUp"/> → <see cref="Copying"/>
/// (or <see cref="Following"/> another run that copies the same GES backup) → <see cref="Done"/>.</item>
/// <item>restore from a copy, restore drill: <see cref="Queued"/> → (<see cref="Checking"/> failures only) →
/// <see cref="Uploading"/> (→ <see cref="Verifying"/> for a drill) → <see cref="Importing"/> → <see cref="Done"/>.</item>
/// <item>import from OBS: <see cref="Importing"/> → <see cref="Done"/>; CSE engine restore: <see cref="Restoring"/> → <see cref="Done"/>.</item>
/// </list>
/// </summary>
public static class RunSteps
{
    public const string Queued = "queued";
    public const string Starting = "starting";
    public const string BackingUp = "backing-up";
    public const string Following = "following";
    public const string Copying = "copying";
    public const string Checking = "checking";
    public const string Uploading = "uploading";
    public const string Verifying = "verifying";
    public const string Importing = "importing";
    public const string Restoring = "restoring";
    public const string Done = "done";
}
