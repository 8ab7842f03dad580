using System.Net;
using System.Text.Json;
using System.Xml.Linq;

namespace BackupRelay.HuaweiCloud;

/// <summary>Reads every documented error shape into a <see cref="HuaweiCloudException"/> and classifies it.</summary>
public static class HuaweiCloudErrors
{
    /// <summary>Error bodies are small; anything beyond this is not read.</summary>
    private const int MaxErrorBody = 64 * 1024;

    public static async Task<HuaweiCloudException> FromResponseAsync(HttpResponseMessage response, TimeProvider time,
        CancellationToken cancellationToken = default)
    {
        var body = "";
        try
        {
            body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (body.Length > MaxErrorBody)
            {
                body = body[..MaxErrorBody];
            }
        }
        catch (HttpRequestException)
        {
            // The error body is a nicety; status and headers still tell what happened.
        }

        var (code, message, bodyRequestId) = Parse(body);
        var requestId = bodyRequestId ?? RequestId(response);
        var status = response.StatusCode;
        return new HuaweiCloudException(Classify(status, code), status, code,
            message ?? (string.IsNullOrWhiteSpace(response.ReasonPhrase) ? "no error message" : response.ReasonPhrase),
            requestId, RetryAfter(response, time));
    }

    /// <summary>(code, message, request id) from JSON in any of its variants, or OBS XML.</summary>
    public static (string? Code, string? Message, string? RequestId) Parse(string body)
    {
        var trimmed = body.TrimStart();
        if (trimmed.StartsWith('<'))
        {
            try
            {
                var root = XDocument.Parse(trimmed).Root;
                return (root?.Element("Code")?.Value, root?.Element("Message")?.Value, root?.Element("RequestId")?.Value);
            }
            catch (System.Xml.XmlException)
            {
                return (null, null, null);
            }
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return (null, null, null);
            }

            // Nested: {"error": {...}} (IAM / Keystone and some gateways).
            if (root.TryGetProperty("error", out var nested) && nested.ValueKind == JsonValueKind.Object)
            {
                var (c, m, r) = Fields(nested);
                return (c, m, r ?? Text(root, "request_id"));
            }

            return Fields(root);
        }
        catch (JsonException)
        {
            return (null, null, null);
        }

        // CSE adds "detail" (the location of the problem, seed page 004): kept with the message.
        static (string?, string?, string?) Fields(JsonElement e) => (
            Text(e, "error_code") ?? Text(e, "errorCode") ?? Text(e, "code"),
            WithDetail(Text(e, "error_msg") ?? Text(e, "errorMessage") ?? Text(e, "error_message") ?? Text(e, "message"), Text(e, "detail")),
            Text(e, "request_id") ?? Text(e, "requestId"));

        static string? WithDetail(string? message, string? detail) =>
            string.IsNullOrWhiteSpace(detail) ? message : $"{message ?? "no error message"} (detail: {detail})";
    }

    public static HuaweiCloudErrorKind Classify(HttpStatusCode? status, string? code)
    {
        switch (code)
        {
            case "GES.7002" or "CSE.00400002":
                return HuaweiCloudErrorKind.Conflict;
            case "GES.7000" or "GES.7007" or "GES.0047":
            case not null when code.StartsWith("CSE.00404", StringComparison.Ordinal):
                return HuaweiCloudErrorKind.NotFound;
            case "GES.7005" or "GES.7006" or "APIG.0201":
                return HuaweiCloudErrorKind.Transient;
            case "APIG.0308":
                return HuaweiCloudErrorKind.Throttled;
            case "APIG.0301" or "APIG.0307":
                return HuaweiCloudErrorKind.Auth;
            default:
                break;
        }

        return (int?)status switch
        {
            null => HuaweiCloudErrorKind.Transient,
            429 => HuaweiCloudErrorKind.Throttled,
            401 or 403 => HuaweiCloudErrorKind.Auth,
            404 => HuaweiCloudErrorKind.NotFound,
            408 or >= 500 => HuaweiCloudErrorKind.Transient,
            _ => HuaweiCloudErrorKind.Invalid,
        };
    }

    public static TimeSpan? RetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        var retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta)
        {
            return delta;
        }

        if (retryAfter?.Date is { } date)
        {
            // Measured against the server's own Date when it sent one: clocks differ.
            var wait = date - (response.Headers.Date ?? time.GetUtcNow());
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    public static string? RequestId(HttpResponseMessage response) => Header(response, "X-Request-Id") ?? Header(response, "x-obs-request-id");

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    private static string? Text(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Number => v.GetRawText(),
            _ => null,
        } : null;
}
