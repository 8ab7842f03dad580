using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// Checks an OBS request signed the S3 way (AWS Signature Version 4, which OBS accepts beside its own
/// V2 scheme): <c>Authorization: AWS4-HMAC-SHA256 Credential=AK/date/region/s3/aws4_request,
/// SignedHeaders=…, Signature=…</c>, the key pair being one of the seed's AK/SK pairs. The payload hash
/// in <c>x-amz-content-sha256</c> is checked against the body when it is a hash.
/// </summary>
internal static class ObsSignatureV4
{
    public const string Algorithm = "AWS4-HMAC-SHA256";
    public const string UnsignedPayload = "UNSIGNED-PAYLOAD";

    /// <summary>Null when the signature holds; otherwise the OBS error code and message to answer with.</summary>
    /// <param name="bodySha256Hex">The SHA-256 of the body as it arrived (hashed while it was read).</param>
    public static (int Status, string Code, string Message)? Verify(HttpContext context, EmulatorState state, string bodySha256Hex)
    {
        var authorization = context.Request.Headers.Authorization.ToString();
        if (!authorization.StartsWith(Algorithm + " ", StringComparison.Ordinal))
        {
            return (403, "AccessDenied", "Anonymous access is not allowed: the request is not signed.");
        }

        var fields = authorization[(Algorithm.Length + 1)..].Split(',', StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        if (!fields.TryGetValue("Credential", out var credential) || !fields.TryGetValue("SignedHeaders", out var signedHeaders)
            || !fields.TryGetValue("Signature", out var signature))
        {
            return (400, "AuthorizationHeaderMalformed", "The authorization header is malformed.");
        }

        var scope = credential.Split('/');
        if (scope.Length != 5 || scope[3] != "s3" || scope[4] != "aws4_request")
        {
            return (400, "AuthorizationHeaderMalformed", "The authorization header is malformed; the credential scope is wrong.");
        }

        SeedKeyPair? pair;
        lock (state.Sync)
        {
            state.KeyPairs.TryGetValue(scope[0], out pair);
        }

        if (pair is null)
        {
            return (403, "InvalidAccessKeyId", "The access key Id you provided does not exist in our records.");
        }

        var amzDate = context.Request.Headers["x-amz-date"].ToString();
        if (!DateTimeOffset.TryParseExact(amzDate, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var signedAt)
            || !amzDate.StartsWith(scope[1], StringComparison.Ordinal))
        {
            return (403, "AccessDenied", "x-amz-date is missing or does not match the credential scope.");
        }

        if ((state.Now - signedAt).Duration() > TimeSpan.FromMinutes(state.Settings.SignatureSkewMinutes))
        {
            return (403, "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large.");
        }

        var payloadHash = context.Request.Headers["x-amz-content-sha256"].ToString();
        if (payloadHash.Length == 0)
        {
            return (400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256.");
        }

        var headerNames = signedHeaders.Split(';');
        if (!headerNames.Contains("host"))
        {
            return (403, "AccessDenied", "The host header must be signed.");
        }

        var canonical = new StringBuilder()
            .Append(context.Request.Method).Append('\n')
            .Append(CanonicalPath(context)).Append('\n')
            .Append(CanonicalQuery(context)).Append('\n');
        foreach (var name in headerNames)
        {
            var value = string.Join(",", context.Request.Headers[name].Select(v => string.Join(' ', (v ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))));
            canonical.Append(name).Append(':').Append(value.Trim()).Append('\n');
        }

        canonical.Append('\n').Append(signedHeaders).Append('\n').Append(payloadHash);
        var stringToSign = $"{Algorithm}\n{amzDate}\n{scope[1]}/{scope[2]}/s3/aws4_request\n"
            + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));
        var key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + pair.SecretKey), Encoding.UTF8.GetBytes(scope[1]));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(scope[2]));
        key = HMACSHA256.HashData(key, "s3"u8.ToArray());
        key = HMACSHA256.HashData(key, "aws4_request"u8.ToArray());
        var expected = Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature)))
        {
            return (403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
        }

        if (payloadHash != UnsignedPayload && !payloadHash.StartsWith("STREAMING-", StringComparison.Ordinal)
            && !string.Equals(payloadHash, bodySha256Hex, StringComparison.OrdinalIgnoreCase))
        {
            return (400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
        }

        return null;
    }

    /// <summary>The path as sent (S3 signs the encoded path once, without normalising it).</summary>
    private static string CanonicalPath(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "/";
        var query = raw.IndexOf('?', StringComparison.Ordinal);
        return query < 0 ? raw : raw[..query];
    }

    private static string CanonicalQuery(HttpContext context) => string.Join("&", context.Request.Query
        .SelectMany(p => p.Value.Select(v => (Name: Uri.EscapeDataString(p.Key), Value: Uri.EscapeDataString(v ?? ""))))
        .OrderBy(p => p.Name, StringComparer.Ordinal)
        .ThenBy(p => p.Value, StringComparer.Ordinal)
        .Select(p => p.Name + "=" + p.Value));
}
