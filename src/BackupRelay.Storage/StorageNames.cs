using System.Text.RegularExpressions;

namespace BackupRelay.Storage;

/// <summary>Queue and container naming rules: 3-63 of a-z, 0-9 and single dashes, starting and ending with a letter or digit.</summary>
public static partial class StorageNames
{
    public static string Queue(string name) => IsValid(name) ? name
        : throw new ArgumentException($"'{name}' is not a valid queue name: 3-63 lower-case letters, digits and single dashes.", nameof(name));

    public static string Container(string name) => IsValid(name) ? name
        : throw new ArgumentException($"'{name}' is not a valid container name: 3-63 lower-case letters, digits and single dashes.", nameof(name));

    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name) && !name.Contains("--", StringComparison.Ordinal);

    [GeneratedRegex(@"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]\z")]
    private static partial Regex Pattern();
}
