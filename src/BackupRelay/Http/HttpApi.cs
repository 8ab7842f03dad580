using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Http;

/// <summary>
/// What every webhook endpoint shares: reading the body (size, signature, JSON), field checks, run ids from
/// <c>Idempotency-Key</c>, and the answers (202 with <c>Location: /api/runs/{id}</c> and <c>Retry-After</c>,
/// Huawei Cloud errors as problem+json). Each resource's endpoint lives with its feature: backups
/// (<c>BackupNowEndpoint</c>), restores (<c>EngineRestoreEndpoint</c>, <c>ImportEndpoint</c>,
/// <c>RestoreFromCopyEndpoint</c>), runs (<c>RunEndpoints</c>), graphs (<c>GraphEndpoints</c>), health (<c>HealthEndpoint</c>).
/// </summary>
public static partial class HttpApi
{
    /// <summary>Seconds a client should wait before asking a running run again.</summary>
    public const int RetryAfterSeconds = 10;

    /// <summary>Longest request line (path and query) answered by the API; Kestrel refuses beyond 8 KiB itself, with no body.</summary>
    public const int MaxUrlLength = 4096;

    /// <summary>A request line (path and query) longer than <see cref="MaxUrlLength"/>: answered 414.</summary>
    public static bool IsUrlTooLong(HttpRequest request) =>
        (request.Path.Value?.Length ?? 0) + (request.QueryString.Value?.Length ?? 0) > MaxUrlLength;

    /// <summary>Stores a restore or import run and, unless it already ended, starts following it on <c>operation-poll</c>.</summary>
    internal static async Task<IResult> FollowAsync(HttpContext context, RunRecord run, RunStore runs, WorkQueues queues, BackupOptions backup)
    {
        await runs.CreateAsync(run, context.RequestAborted);
        if (!run.IsFinished)
        {
            await queues.SendOperationPollAsync(new PollOperationMessage(MessageParser.CurrentVersion, run.Id, 0), backup.OperationPollInterval, context.RequestAborted);
        }

        return Accepted(context, run);
    }

    internal static IResult Accepted(HttpContext context, RunRecord run)
    {
        context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new AcceptedWithLocation($"/api/runs/{run.Id}", Results.Json(run, RunRecordJson.Default.RunRecord, statusCode: 202));
    }

    /// <summary>A Huawei Cloud failure as problem+json with the upstream code and message (never a secret).</summary>
    public static IResult Upstream(HuaweiCloudException ex)
    {
        var status = ex.Kind switch
        {
            HuaweiCloudErrorKind.Invalid => 400,
            HuaweiCloudErrorKind.NotFound => 404,
            HuaweiCloudErrorKind.Conflict => 409,
            HuaweiCloudErrorKind.Auth => 502,
            _ => 503,
        };
        var extensions = new Dictionary<string, object?>
        {
            ["upstreamStatus"] = ex.StatusCode is null ? null : (int)ex.StatusCode,
            ["upstreamCode"] = ex.ErrorCode,
            ["upstreamMessage"] = ex.ErrorMessage,
            ["requestId"] = ex.RequestId,
        };
        return TypedResults.Problem(detail: $"Huawei Cloud answered {ex.ErrorCode ?? "an error"}: {ex.ErrorMessage}", statusCode: status,
            title: status == 409 ? "Already in progress" : status >= 500 ? "Huawei Cloud failed" : "Huawei Cloud refused the request",
            extensions: extensions);
    }

    /// <summary>
    /// The body read (at most <see cref="HttpOptions.MaxBodyBytes"/>: 413 beyond), its signature checked when
    /// <paramref name="signed"/> (401), then bound to <typeparamref name="T"/> and validated: what is wrong with it is
    /// added to <paramref name="errors"/> under the field's name, for the caller to answer with its own errors in one 400.
    /// </summary>
    internal static async Task<(T? Body, IResult? Problem)> ReadBodyAsync<T>(HttpContext context, HttpOptions options, TimeProvider time, bool signed,
        JsonTypeInfo<T> type, Dictionary<string, string[]> errors)
        where T : class, IRequestBody
    {
        var request = context.Request;
        if (request.ContentLength > options.MaxBodyBytes)
        {
            return (null, TypedResults.Problem($"The body is larger than {options.MaxBodyBytes} bytes.", statusCode: 413, title: "Body too large"));
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > options.MaxBodyBytes)
            {
                return (null, TypedResults.Problem($"The body is larger than {options.MaxBodyBytes} bytes.", statusCode: 413, title: "Body too large"));
            }
        }

        var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (signed && options.WebhookSecret is { Length: > 0 } secret)
        {
            // The target as it arrived (the Functions host forwards the original path and query).
            var target = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget
                ?? (request.Path + request.QueryString).ToString();
            var problem = WebhookSignature.Check(secret, request.Headers[WebhookSignature.Header], time.GetUtcNow(), options.SignatureTolerance,
                request.Method, target, bytes.Span, options.AcceptLegacySignatures, out var accepted);
            if (problem is null && !await context.RequestServices.GetRequiredService<SignatureReplayGuard>().FirstUseAsync(accepted!, context.RequestAborted))
            {
                problem = "this signature was already accepted once: sign each request anew";
            }

            if (problem is not null)
            {
                return (null, TypedResults.Problem(problem, statusCode: 401, title: "Invalid webhook signature"));
            }
        }

        return (RequestBinding.Bind(bytes.Span, type, errors), null);
    }

    /// <summary>Null, or 1-<paramref name="maxLength"/> characters; false with an error naming the field otherwise.</summary>
    internal static bool CheckLength(string? value, string field, int maxLength, Dictionary<string, string[]> errors)
    {
        if (value is not null && (value.Length == 0 || value.Length > maxLength))
        {
            errors[field] = [$"{field} must be 1-{maxLength} characters."];
            return false;
        }

        return true;
    }

    /// <summary>The <c>Idempotency-Key</c> header ("" when absent); over 200 characters is an error naming it.</summary>
    internal static string IdempotencyKey(HttpContext context, Dictionary<string, string[]> errors)
    {
        var key = context.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length > 200)
        {
            errors["Idempotency-Key"] = ["Idempotency-Key must be at most 200 characters."];
        }

        return key;
    }

    /// <summary>A run id: derived from (graph, key) so the same request with the same key is the same run; a new one without a key.</summary>
    internal static string RunId(string prefix, string graphId, string key) => key.Length > 0
        ? prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(graphId + "\n" + key)))[..32]
        : prefix + Guid.NewGuid().ToString("N");

    /// <summary>A <c>?limit=</c>: <paramref name="fallback"/> when absent, else a whole number in 1..<paramref name="max"/> (an error naming it otherwise).</summary>
    internal static int QueryLimit(string? text, int max, int fallback, Dictionary<string, string[]> errors)
    {
        if (text is null)
        {
            return fallback;
        }

        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= max)
        {
            return n;
        }

        errors["limit"] = [$"limit must be a whole number between 1 and {max}."];
        return fallback;
    }

    internal static void CheckId(string value, string field, Dictionary<string, string[]> errors)
    {
        if (!HuaweiCloudIds.IsValidId(value))
        {
            errors[field] = [$"{field} must be 1-128 of letters, digits, '-', '_', '.', '~', starting with a letter or digit."];
        }
    }

    /// <summary><c>obs://bucket/path/</c> or <c>bucket/path/</c> → <c>bucket/path/</c> (the form GES takes).</summary>
    public static bool TryObsPath(string value, out string? path)
    {
        var text = value.StartsWith("obs://", StringComparison.OrdinalIgnoreCase) ? value[6..] : value;
        var match = ObsPath().Match(text);
        path = match.Success && !text.Contains("..", StringComparison.Ordinal) && !text.Contains("//", StringComparison.Ordinal) ? text : null;
        return path is not null;
    }

    [GeneratedRegex(@"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._~!$&'()*+,;=:@ -]+)*/?\z")]
    internal static partial Regex ObsPath();

    /// <summary>202 with a Location header and the run as body.</summary>
    private sealed class AcceptedWithLocation(string location, IResult body) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.Location = location;
            return body.ExecuteAsync(httpContext);
        }
    }
}
