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
