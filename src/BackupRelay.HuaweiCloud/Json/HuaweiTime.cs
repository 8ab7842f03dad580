using System.Globalization;
using System.Text.RegularExpressions;

namespace BackupRelay.HuaweiCloud.Json;

/// <summary>Lenient parsing of the time formats Huawei Cloud APIs send.</summary>
public static partial class HuaweiTime
{
    private static readonly string[] UtcFormats =
    [
        "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", "yyyy-MM-dd'T'HH:mm:ss'Z'",
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", "yyyy-MM-dd HH:mm:ss.FFFFFFF",
    ];

    /// <summary>
    /// Job and backup times: <c>yyyy-MM-ddTHH:mm:ss</c> or <c>yyyy-MM-dd HH:mm:ss</c>, UTC, no zone;
    /// an explicit zone (<c>Z</c>, <c>+08:00</c>, <c>+0800</c>) is honoured.
    /// </summary>
    public static DateTimeOffset? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var value = text.Trim();
        var compactOffset = CompactOffset().Match(value);
        if (compactOffset.Success)
        {
            value = value[..compactOffset.Index] + compactOffset.Groups[1].Value + compactOffset.Groups[2].Value + ":" + compactOffset.Groups[3].Value;
        }

        // The download-link page's own example has a three-digit day ("2018-08-016"): keep its last two digits.
        value = ThreeDigitDay().Replace(value, "$1$2");

        if (DateTimeOffset.TryParseExact(value, UtcFormats, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var utc))
        {
            return utc;
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var any)
            ? any
            : null;
    }

    /// <summary>Epoch milliseconds when present, else the text form.</summary>
    public static DateTimeOffset? FromTimestampOrText(long? epochMilliseconds, string? text) =>
        epochMilliseconds is > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(epochMilliseconds.Value) : Parse(text);

    [GeneratedRegex(@"([+-])(\d\d)(\d\d)$")]
    private static partial Regex CompactOffset();

    [GeneratedRegex(@"^(\d{4}-\d\d-)0(\d\d)")]
    private static partial Regex ThreeDigitDay();
}
