using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace BackupRelay.Storage.Auth;

/// <summary>
/// Shared Key authorization for the Blob and Queue services (version 2015-02-21 and later), as the
/// Azure Storage REST documentation defines the string to sign.
/// </summary>
public static class SharedKeySigner
{
    public static string Authorization(HttpRequestMessage request, string accountName, byte[] accountKey)
    {
        var signature = Convert.ToBase64String(HMACSHA256.HashData(accountKey, Encoding.UTF8.GetBytes(StringToSign(request, accountName))));
        return $"SharedKey {accountName}:{signature}";
    }

    public static string StringToSign(HttpRequestMessage request, string accountName)
    {
        var content = request.Content?.Headers;
        var length = content?.ContentLength is > 0 ? content.ContentLength.Value.ToString(CultureInfo.InvariantCulture) : "";
        var builder = new StringBuilder();
        builder.Append(request.Method.Method.ToUpperInvariant()).Append('\n');
        builder.Append(Header(content, "Content-Encoding")).Append('\n');
        builder.Append(Header(content, "Content-Language")).Append('\n');
        builder.Append(length).Append('\n');
        builder.Append(content?.ContentMD5 is { } md5 ? Convert.ToBase64String(md5) : "").Append('\n');
        builder.Append(content?.ContentType?.ToString() ?? "").Append('\n');
        builder.Append("").Append('\n'); // Date: x-ms-date is used instead
        builder.Append(Header(request.Headers, "If-Modified-Since")).Append('\n');
        builder.Append(Header(request.Headers, "If-Match")).Append('\n');
        builder.Append(Header(request.Headers, "If-None-Match")).Append('\n');
        builder.Append(Header(request.Headers, "If-Unmodified-Since")).Append('\n');
        builder.Append(Header(request.Headers, "Range")).Append('\n');
        builder.Append(CanonicalizedHeaders(request.Headers.Select(h => new KeyValuePair<string, string>(h.Key, string.Join(',', h.Value)))));
        builder.Append(CanonicalizedResource(request.RequestUri!, accountName));
        return builder.ToString();
    }

    /// <summary>Every <c>x-ms-</c> header, lower-cased, sorted, <c>name:value\n</c>, whitespace in values folded.</summary>
    public static string CanonicalizedHeaders(IEnumerable<KeyValuePair<string, string>> headers)
    {
        var builder = new StringBuilder();
        foreach (var (name, value) in headers
                     .Where(h => h.Key.StartsWith("x-ms-", StringComparison.OrdinalIgnoreCase))
                     .Select(h => (Name: h.Key.ToLowerInvariant(), Value: Fold(h.Value)))
                     .OrderBy(h => h.Name, StringComparer.Ordinal))
        {
            builder.Append(name).Append(':').Append(value).Append('\n');
        }

        return builder.ToString();
    }

    /// <summary>
    /// <c>/{account}{encoded path}</c>, then each query parameter as <c>\nname:v1,v2</c>: names
    /// lower-cased and sorted, values decoded and sorted.
    /// </summary>
    public static string CanonicalizedResource(Uri uri, string accountName)
    {
        var builder = new StringBuilder("/").Append(accountName).Append(uri.AbsolutePath.Length == 0 ? "/" : uri.AbsolutePath);
        var query = uri.Query.TrimStart('?');
        if (query.Length == 0)
        {
            return builder.ToString();
        }

        var parameters = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            var name = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]).ToLowerInvariant();
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..]);
            if (!parameters.TryGetValue(name, out var values))
            {
                parameters[name] = values = [];
            }

            values.Add(value);
        }

        foreach (var (name, values) in parameters)
        {
            values.Sort(StringComparer.Ordinal);
            builder.Append('\n').Append(name).Append(':').Append(string.Join(',', values));
        }

        return builder.ToString();
    }

    private static string Header(System.Net.Http.Headers.HttpHeaders? headers, string name) =>
        headers is not null && headers.TryGetValues(name, out var values) ? string.Join(',', values) : "";

    private static string Fold(string value)
    {
        var builder = new StringBuilder(value.Length);
        var space = false;
        foreach (var c in value.Trim())
        {
            if (c is ' ' or '\t' or '\r' or '\n')
            {
                space = true;
                continue;
            }

            if (space)
            {
                builder.Append(' ');
                space = false;
            }

            builder.Append(c);
        }

        return builder.ToString();
    }
}
