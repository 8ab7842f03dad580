using System.Globalization;
using System.Security;
using System.Text.Json.Serialization.Metadata;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>The error bodies of the real services, one helper per shape.</summary>
internal static class Responses
{
    public static string RequestId(HttpContext context) =>
        context.Items.TryGetValue("RequestId", out var id) ? (string)id! : "";

    public static IResult Json<T>(T value, JsonTypeInfo<T> type, int status = 200) =>
        TypedResults.Json(value, type, statusCode: status);

    /// <summary>GES v2 / API gateway: <c>{"error_code","error_msg"}</c>, gateway errors add <c>request_id</c>.</summary>
    public static IResult Ges(HttpContext context, int status, string code, string message) =>
        Json(new ErrorBody(code, message, code.StartsWith("APIG.", StringComparison.Ordinal) ? RequestId(context) : null),
            SnakeJson.Wire.ErrorBody, status);

    public static IResult GraphNotFound(HttpContext context) =>
        Ges(context, 400, "GES.7000", "The graph does not exist or has been deleted.");

    /// <summary>The camelCase body of the import page (seed 000).</summary>
    public static IResult Camel(int status, string code, string message) =>
        Json(new CamelErrorBody(code, message), CamelJson.Wire.CamelErrorBody, status);

    /// <summary>CSE: <c>{"error_code","error_msg","detail"}</c>.</summary>
    public static IResult Cse(int status, string code, string message, string detail) =>
        Json(new DetailedErrorBody(code, message, detail), SnakeJson.Wire.DetailedErrorBody, status);

    /// <summary>IAM (Keystone): <c>{"error":{"code","message","title"}}</c>.</summary>
    public static IResult Keystone(int status, string message, string title) =>
        Json(new KeystoneErrorBody(new KeystoneError(status, message, title)), CamelJson.Wire.KeystoneErrorBody, status);

    /// <summary>OBS: an XML <c>&lt;Error&gt;</c> document.</summary>
    public static IResult Obs(HttpContext context, int status, string code, string message)
    {
        var requestId = RequestId(context);
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>"
            + SecurityElement.Escape(message) + "</Message><RequestId>" + requestId + "</RequestId><HostId>"
            + Convert.ToBase64String(Guid.NewGuid().ToByteArray()) + "</HostId></Error>";
        return TypedResults.Text(xml, "application/xml", statusCode: status);
    }

    public static string GesTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);

    public static string JobTime(DateTimeOffset time, string format) =>
        time.UtcDateTime.ToString(format == "space" ? "yyyy-MM-dd HH:mm:ss" : "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);

    /// <summary><c>link_expired_time</c> in the configured variant: +0800 offset, no offset, or the doc's malformed day.</summary>
    public static string LinkExpiry(DateTimeOffset time, string format)
    {
        var china = time.ToOffset(TimeSpan.FromHours(8));
        return format switch
        {
            "utc" => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture),
            "doc" => china.ToString("yyyy-MM-'0'dd'T'HH:mm:ss'+0800'", CultureInfo.InvariantCulture),
            _ => china.ToString("yyyy-MM-dd'T'HH:mm:ss'+0800'", CultureInfo.InvariantCulture),
        };
    }
}
