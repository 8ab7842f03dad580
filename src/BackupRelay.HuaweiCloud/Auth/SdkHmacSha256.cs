using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace BackupRelay.HuaweiCloud.Auth;

/// <summary>
/// Huawei Cloud API-gateway request signing (<c>SDK-HMAC-SHA256</c>): canonical request,
/// string to sign and signature, shared by the client's signer and the emulator's verifier.
/// </summary>
public static class SdkHmacSha256
{
    public const string Algorithm = "SDK-HMAC-SHA256";
    public const string DateHeader = "X-Sdk-Date";
    public const string DateFormat = "yyyyMMdd'T'HHmmss'Z'";

    /// <summary>Hex SHA-256 of an empty body.</summary>
    public const string EmptyBodySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    public static string FormatDate(DateTimeOffset time) =>
        time.UtcDateTime.ToString(DateFormat, CultureInfo.InvariantCulture);

    public static bool TryParseDate(string? value, out DateTimeOffset time) =>
        DateTimeOffset.TryParseExact(value, DateFormat, CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);

    /// <summary>Percent-encodes everything but the unreserved characters, upper-case hex.</summary>
    public static string Encode(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        var builder = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            var c = (char)b;
            if (c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.' or '~')
            {
                builder.Append(c);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    /// <summary>
    /// As Huawei's official SDKs compute it: the whole path percent-decoded, then split on '/', each
    /// segment encoded again (unreserved characters kept, upper-case hex); always ends in '/'. So a
    /// <c>%2F</c> inside a segment signs as a separator, exactly as the API gateway verifies it.
    /// </summary>
    public static string CanonicalUri(string rawPath)
    {
        var segments = Uri.UnescapeDataString(rawPath).Split('/');
        var canonical = string.Join('/', segments.Select(Encode));
        if (!canonical.StartsWith('/'))
        {
            canonical = "/" + canonical;
        }

        return canonical.EndsWith('/') ? canonical : canonical + "/";
    }

    /// <summary>Query pairs decoded, sorted by name then value, encoded, joined by '&amp;'.</summary>
    public static string CanonicalQuery(string? rawQuery)
    {
        if (string.IsNullOrEmpty(rawQuery))
        {
            return string.Empty;
        }

        var query = rawQuery.StartsWith('?') ? rawQuery[1..] : rawQuery;
        var pairs = new List<(string Key, string Value)>();
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            var key = eq < 0 ? part : part[..eq];
            var value = eq < 0 ? string.Empty : part[(eq + 1)..];
            pairs.Add((Decode(key), Decode(value)));
        }

        return string.Join('&', pairs
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .ThenBy(p => p.Value, StringComparer.Ordinal)
            .Select(p => Encode(p.Key) + "=" + Encode(p.Value)));

        static string Decode(string s) => Uri.UnescapeDataString(s.Replace('+', ' '));
    }

    /// <summary>The six-part canonical request.</summary>
    /// <param name="method">The HTTP method, upper case.</param>
    /// <param name="rawPath">The path as sent, percent-encoded.</param>
    /// <param name="rawQuery">The query as sent, without the <c>?</c>; null or empty for none.</param>
    /// <param name="headers">The signed headers, any order and case; values are trimmed.</param>
    /// <param name="bodySha256Hex">The lower-case hex SHA-256 of the body.</param>
    public static string CanonicalRequest(string method, string rawPath, string? rawQuery,
        IEnumerable<KeyValuePair<string, string>> headers, string bodySha256Hex)
    {
        var sorted = headers
            .Select(h => (Name: h.Key.ToLowerInvariant(), Value: h.Value.Trim()))
            .OrderBy(h => h.Name, StringComparer.Ordinal)
            .ToList();
        var builder = new StringBuilder();
        builder.Append(method.ToUpperInvariant()).Append('\n');
        builder.Append(CanonicalUri(rawPath)).Append('\n');
        builder.Append(CanonicalQuery(rawQuery)).Append('\n');
        foreach (var (name, value) in sorted)
        {
            builder.Append(name).Append(':').Append(value).Append('\n');
        }

        builder.Append('\n');
        builder.Append(string.Join(';', sorted.Select(h => h.Name))).Append('\n');
        builder.Append(bodySha256Hex);
        return builder.ToString();
    }

    public static string SignedHeaderNames(IEnumerable<string> names) =>
        string.Join(';', names.Select(n => n.ToLowerInvariant()).Order(StringComparer.Ordinal));

    public static string StringToSign(string sdkDate, string canonicalRequest) =>
        $"{Algorithm}\n{sdkDate}\n{HexSha256(Encoding.UTF8.GetBytes(canonicalRequest))}";

    public static string Signature(string secretKey, string stringToSign) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secretKey), Encoding.UTF8.GetBytes(stringToSign)));

    public static string HexSha256(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    public static string AuthorizationHeader(string accessKey, string signedHeaders, string signature) =>
        $"{Algorithm} Access={accessKey}, SignedHeaders={signedHeaders}, Signature={signature}";

    /// <summary>Parses <c>SDK-HMAC-SHA256 Access=.., SignedHeaders=.., Signature=..</c>.</summary>
    public static bool TryParseAuthorization(string? header, out string accessKey, out string[] signedHeaders, out string signature)
    {
        accessKey = string.Empty;
        signature = string.Empty;
        signedHeaders = [];
        if (header is null || !header.StartsWith(Algorithm + " ", StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var part in header[(Algorithm.Length + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0)
            {
                return false;
            }

            var value = part[(eq + 1)..];
            switch (part[..eq])
            {
                case "Access": accessKey = value; break;
                case "SignedHeaders": signedHeaders = value.Split(';', StringSplitOptions.RemoveEmptyEntries); break;
                case "Signature": signature = value; break;
                default: break;
            }
        }

        return accessKey.Length > 0 && signature.Length > 0 && signedHeaders.Length > 0;
    }

    /// <summary>Constant-time comparison of two signatures (hex, or OBS's base64).</summary>
    public static bool SignaturesEqual(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));
}
