using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace BackupRelay.Tests.Integration.Storage;

/// <summary>An account SAS (version 2019-12-12 string to sign), to test SAS connections against Azurite.</summary>
public static class AccountSas
{
    public static string Create(string account, string base64Key, DateTimeOffset expiry, string permissions = "rwdlacup", string services = "bq", string resourceTypes = "sco")
    {
        const string version = "2019-12-12";
        var se = expiry.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var toSign = $"{account}\n{permissions}\n{services}\n{resourceTypes}\n\n{se}\n\nhttps,http\n{version}\n";
        var sig = Convert.ToBase64String(HMACSHA256.HashData(Convert.FromBase64String(base64Key), Encoding.UTF8.GetBytes(toSign)));
        return $"sv={version}&ss={services}&srt={resourceTypes}&sp={permissions}&se={Uri.EscapeDataString(se)}&spr=https,http&sig={Uri.EscapeDataString(sig)}";
    }
}
