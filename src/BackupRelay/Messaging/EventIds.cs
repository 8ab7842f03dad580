namespace BackupRelay.Messaging;

/// <summary>Notification event ids: path-safe (they name a marker blob), at most 200 characters.</summary>
public static partial class EventIds
{
    public static bool IsValid(string? id) => id is not null && Pattern().IsMatch(id);

    [System.Text.RegularExpressions.GeneratedRegex(@"^[A-Za-z0-9._~-]{1,200}\z")]
    private static partial System.Text.RegularExpressions.Regex Pattern();
}
