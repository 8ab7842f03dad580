using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace BackupRelay.Storage.Auth;

/// <summary>
/// Account SAS tokens (service version 2019-12-12 string to sign), for handing a time-limited
/// credential to another tool (the benchmark's rclone) or testing SAS connections.
/// </summary>
public static class AccountSas
{
    public const string Version = "2019-12-12";

    /// <summary>The SAS query (no leading '?'). A secret.</summary>
    public static string Create(string account, string base64Key, DateTimeOffset expiry, string permissions = "rwdlacup",
        string services = "bq", string resourceTypes = "sco")
    {
        var se = expiry.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var toSign = $"{account}\n{permissions}\n{services}\n{resourceTypes}\n\n{se}\n\nhttps,http\n{Version}\n";
        var sig = Convert.ToBase64String(HMACSHA256.HashData(Convert.FromBase64String(base64Key), Encoding.UTF8.GetBytes(toSign)));
        return $"sv={Version}&ss={services}&srt={resourceTypes}&sp={permissions}&se={Uri.EscapeDataString(se)}&spr=https,http&sig={Uri.EscapeDataString(sig)}";
    }
}
