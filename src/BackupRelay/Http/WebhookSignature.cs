using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace BackupRelay.Http;

/// <summary>
/// <c>X-BackupRelay-Signature: t=&lt;unix seconds&gt;,v2=&lt;hex HMAC-SHA256(secret, t + "." + METHOD + "." + target + "." + body)&gt;</c>.
/// The signature covers what it authorises — the method, the path with its query, and the body — so a
/// captured request cannot be re-sent to another engine, backup or graph; the time bounds it to a
/// window, and the receiver refuses a signature it has already accepted (see <see cref="SignatureReplayGuard"/>).
/// <para>
/// <c>target</c> is the path percent-decoded, then, if there is a query, <c>?</c> and its pairs decoded,
/// without <c>code</c> (a function key the platform may add or drop), sorted by name then value and
/// encoded again, joined by <c>&amp;</c>: the same on both sides of the Functions host, which re-encodes
/// forwarded URLs. The legacy <c>v1</c> (body only) is accepted only with <c>Http__AcceptLegacySignatures</c>.
/// </para>
/// </summary>
public static class WebhookSignature
{
    public const string Header = "X-BackupRelay-Signature";

    /// <summary>The header value for a request to <paramref name="pathAndQuery"/>.</summary>
    public static string Sign(string secret, DateTimeOffset at, string method, string pathAndQuery, ReadOnlySpan<byte> body)
    {
        var t = at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return $"t={t},v2={Mac(secret, $"{t}.{method.ToUpperInvariant()}.{CanonicalTarget(pathAndQuery)}.", body)}";
    }

    /// <summary>The legacy body-only scheme (<c>v1</c>), for senders that cannot sign the target yet.</summary>
    public static string SignLegacy(string secret, DateTimeOffset at, ReadOnlySpan<byte> body)
    {
        var t = at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return $"t={t},v1={Mac(secret, t + ".", body)}";
    }

    /// <summary>An accepted signature: its time and value, for the replay check.</summary>
    public sealed record Accepted(long Time, string Signature);

    /// <summary>Null when valid (<paramref name="accepted"/> set); else why not (no secret in the reason).</summary>
    public static string? Check(string secret, string? header, DateTimeOffset now, TimeSpan tolerance, string method, string pathAndQuery,
        ReadOnlySpan<byte> body, bool acceptLegacy, out Accepted? accepted)
    {
        accepted = null;
        if (string.IsNullOrEmpty(header))
        {
            return $"the {Header} header is missing";
        }

        string? t = null, v1 = null, v2 = null;
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
            else if (part.StartsWith("v2=", StringComparison.Ordinal))
            {
                v2 = part[3..];
            }
        }

        if (t is null || (v2 is null && v1 is null) || !long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return $"the {Header} header must be t=<unix seconds>,v2=<hex hmac>";
        }

        if (v2 is null && !acceptLegacy)
        {
            return "v1 signatures (body only) are not accepted: sign the method, path and body (v2)";
        }

        // Compared in seconds: a t beyond year 9999 is just far outside the window, not an overflow.
        if (Math.Abs(now.ToUnixTimeSeconds() - Math.Min(seconds, long.MaxValue / 2)) > (long)tolerance.TotalSeconds)
        {
            return "the signature is outside the allowed time window";
        }

        var (given, expected) = v2 is not null
            ? (v2, Mac(secret, $"{t}.{method.ToUpperInvariant()}.{CanonicalTarget(pathAndQuery)}.", body))
            : (v1!, Mac(secret, t + ".", body));
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(given.ToLowerInvariant())))
        {
            return "the signature does not match the request (method, path, query and body are signed)";
        }

        accepted = new Accepted(seconds, expected);
        return null;
    }

    /// <summary>
    /// The path decoded, and the query's pairs (without <c>code</c>) decoded, sorted and encoded again —
    /// the query canonicalised exactly as the SDK-HMAC-SHA256 signer does it.
    /// </summary>
    public static string CanonicalTarget(string pathAndQuery)
    {
        var q = pathAndQuery.IndexOf('?');
        var path = Uri.UnescapeDataString(q < 0 ? pathAndQuery : pathAndQuery[..q]);
        if (q < 0)
        {
            return path;
        }

        var kept = pathAndQuery[(q + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Where(part => Uri.UnescapeDataString(part.Split('=', 2)[0].Replace('+', ' ')) != "code");
        var query = HuaweiCloud.Auth.SdkHmacSha256.CanonicalQuery(string.Join('&', kept));
        return query.Length == 0 ? path : path + "?" + query;
    }

    private static string Mac(string secret, string prefix, ReadOnlySpan<byte> body)
    {
        var head = Encoding.UTF8.GetBytes(prefix);
        var data = new byte[head.Length + body.Length];
        head.CopyTo(data, 0);
        body.CopyTo(data.AsSpan(head.Length));
        return Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), data));
    }
}

/// <summary>
/// Refuses a signature accepted before: each accepted one is recorded with a conditional write
/// (<c>backuprelay-runs/signatures/{t}-{signature}</c>, If-None-Match: *), so the refusal holds across
/// every instance sharing the storage.
/// </summary>
public sealed class SignatureReplayGuard(Runs.RunStore runs)
{
    /// <summary>True the first time this signature is seen; false for a replay.</summary>
    public async Task<bool> FirstUseAsync(WebhookSignature.Accepted accepted, CancellationToken cancellationToken)
    {
        var marker = runs.Container.GetBlobClient($"signatures/{accepted.Time}-{accepted.Signature}");
        var written = await Storage.BlobWrites.UploadAsync(marker, BinaryData.FromString(""),
            new Azure.Storage.Blobs.Models.BlobUploadOptions { Conditions = Storage.BlobWrites.IfNotExists() }, cancellationToken);
        return written.Succeeded;
    }
}
