using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace BackupRelay.Http;

/// <summary>
/// <c>X-BackupRelay-Signature: t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256(secret, t + "." + body)&gt;</c>:
/// the sender proves it knows the secret and when it signed; a stale or altered request is refused.
/// </summary>
public static class WebhookSignature
{
    public const string Header = "X-BackupRelay-Signature";

    public static string Sign(string secret, DateTimeOffset at, ReadOnlySpan<byte> body)
    {
        var t = at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return $"t={t},v1={Mac(secret, t, body)}";
    }

    /// <summary>Null when valid; else why not (no secret in the reason).</summary>
    public static string? Check(string secret, string? header, DateTimeOffset now, TimeSpan tolerance, ReadOnlySpan<byte> body)
    {
        if (string.IsNullOrEmpty(header))
        {
            return $"the {Header} header is missing";
        }

        string? t = null, v1 = null;
        foreach (var part in header.Split(',', StringSplitOptions.TrimEntries))
        {
            if (part.StartsWith("t=", StringComparison.Ordinal))
            {
                t = part[2..];
            }
            else if (part.StartsWith("v1=", StringComparison.Ordinal))
            {
                v1 = part[3..];
            }
        }

        if (t is null || v1 is null || !long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return $"the {Header} header must be t=<unix seconds>,v1=<hex hmac>";
        }

        // Compared in seconds: a t beyond year 9999 is just far outside the window, not an overflow.
        if (Math.Abs(now.ToUnixTimeSeconds() - Math.Min(seconds, long.MaxValue / 2)) > (long)tolerance.TotalSeconds)
        {
            return "the signature is outside the allowed time window";
        }

        var expected = Encoding.ASCII.GetBytes(Mac(secret, t, body));
        var given = Encoding.ASCII.GetBytes(v1.ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(expected, given) ? null : "the signature does not match the request";
    }

    private static string Mac(string secret, string t, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.UTF8.GetBytes(t + ".");
        var data = new byte[prefix.Length + body.Length];
        prefix.CopyTo(data, 0);
        body.CopyTo(data.AsSpan(prefix.Length));
        return Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), data));
    }
}
