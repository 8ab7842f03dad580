using System.Text.RegularExpressions;

namespace BackupRelay.HuaweiCloud;

/// <summary>Checks ids before they go into a URL: a bad id is the caller's bug, raised before any call.</summary>
public static partial class HuaweiCloudIds
{
    public const int MaxIdLength = 128;

    /// <summary>Project id: 1-64 letters and digits.</summary>
    public static string ProjectId(string? value, string name = "projectId") =>
        value is not null && ProjectIdPattern().IsMatch(value)
            ? value
            : throw new ArgumentException($"{name} must be 1-64 letters and digits.", name);

    /// <summary>Graph, backup, job or engine id: non-empty, at most 128 of <c>A-Z a-z 0-9 - _ . ~</c>, starting with a letter or digit.</summary>
    public static string Id(string? value, string name) =>
        value is not null && IdPattern().IsMatch(value)
            ? value
            : throw new ArgumentException(
                $"{name} must be 1-{MaxIdLength} characters of letters, digits, '-', '_', '.', '~', starting with a letter or digit.", name);

    public static bool IsValidId(string? value) => value is not null && IdPattern().IsMatch(value);

    [GeneratedRegex(@"^[A-Za-z0-9]{1,64}\z")]
    private static partial Regex ProjectIdPattern();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}\z")]
    private static partial Regex IdPattern();
}
