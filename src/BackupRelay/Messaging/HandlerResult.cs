namespace BackupRelay.Messaging;

public enum HandlerOutcome
{
    /// <summary>Handled (or nothing to do): delete the message.</summary>
    Done,

    /// <summary>Failed for now: let the message come back (the host counts deliveries and parks it at the limit).</summary>
    Retry,

    /// <summary>Can never succeed (malformed, unknown version, unknown run): park it with the reason, do not retry.</summary>
    Park,
}

public sealed record HandlerResult(HandlerOutcome Outcome, string? Reason = null)
{
    public static readonly HandlerResult Done = new(HandlerOutcome.Done);

    public static HandlerResult Retry(string reason) => new(HandlerOutcome.Retry, reason);

    public static HandlerResult Park(string reason) => new(HandlerOutcome.Park, reason);
}

/// <summary>A queue-triggered function: its name (= folder = route), its queue, and the work.</summary>
public interface IQueueFunction
{
    string Name { get; }
    string Queue { get; }

    Task<HandlerResult> HandleAsync(string message, long dequeueCount, CancellationToken cancellationToken);
}

/// <summary>The function names: the folder at the app root, the route <c>POST /{name}</c>, and this constant are one string.</summary>
public static class FunctionNames
{
    public const string ScheduleBackups = "ScheduleBackups";
    public const string ScheduleDrills = "ScheduleDrills";
    public const string StartBackup = "StartBackup";
    public const string PollBackupJob = "PollBackupJob";
    public const string CopyBackupFile = "CopyBackupFile";
    public const string PollOperation = "PollOperation";
    public const string Notify = "Notify";
    public const string UploadToObs = "UploadToObs";
}

/// <summary>Notification event ids: path-safe (they name a marker blob), at most 200 characters.</summary>
public static partial class EventIds
{
    public static bool IsValid(string? id) => id is not null && Pattern().IsMatch(id);

    [System.Text.RegularExpressions.GeneratedRegex(@"^[A-Za-z0-9._~-]{1,200}\z")]
    private static partial System.Text.RegularExpressions.Regex Pattern();
}
