using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using BackupRelay.Configuration;
using BackupRelay.Freshness;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Cse;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BackupRelay.Http;

/// <summary>
/// The webhook API, served by both hosts (forwarded as is by the Functions host): restore a CSE
/// engine, import a GES backup, back up a graph now, read runs, health. Long work answers 202 with
/// <c>Location: /api/runs/{id}</c> and <c>Retry-After</c>; every error is problem+json.
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

    internal static async Task<IResult> RestoreAsync(HttpContext context, string engineId, string backupId, CseClient cse, RunStore runs,
        WorkQueues queues, IOptions<HttpOptions> http, IOptions<BackupOptions> backup, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        CheckId(engineId, "engineId", errors);
        CheckId(backupId, "backupId", errors);
        var (body, bodyProblem) = await ReadBodyAsync(context, http.Value, time, signed: true);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        var name = OptionalString(body, "name", 64, errors);
        var description = OptionalString(body, "description", 255, errors);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var now = time.GetUtcNow();
        name ??= $"relay-{backupId[..Math.Min(8, backupId.Length)]}-{now.UtcDateTime:yyyyMMddHHmmss}";
        CseRestoreRecord record;
        CseEngine engine;
        try
        {
            record = await cse.RestoreAsync(engineId, backupId, name, description, context.RequestAborted);
            engine = await cse.GetEngineAsync(engineId, context.RequestAborted);
        }
        catch (HuaweiCloudException ex)
        {
            return Upstream(ex);
        }

        var run = new RunRecord
        {
            Id = "rst-" + Guid.NewGuid().ToString("N"),
            Kind = "restore",
            Trigger = "http",
            EngineId = engineId,
            BackupId = backupId,
            GraphId = "",
            RestoreId = record.Id,
            RestoreStatus = record.Status,
            JobId = engine.LatestJobId,
            Status = RunStatus.Running,
            Step = "restoring",
            CreatedAt = now,
            UpdatedAt = now,
            SubmittedAt = now,
            Deadline = now + backup.Value.JobDeadline,
        };
        if (run.JobId is null)
        {
            run.Fail(now, "restoring", "CSE accepted the restore but reports no job to follow");
        }

        return await FollowAsync(context, run, runs, queues, backup.Value);
    }

    internal static async Task<IResult> ImportAsync(HttpContext context, string graphId, GesClient ges, RunStore runs, WorkQueues queues,
        IOptions<HttpOptions> http, IOptions<BackupOptions> backup, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        CheckId(graphId, "graphId", errors);
        var (body, bodyProblem) = await ReadBodyAsync(context, http.Value, time, signed: true);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        var raw = OptionalString(body, "import_path", 1024, errors);
        string? importPath = null;
        if (raw is null && !errors.ContainsKey("import_path"))
        {
            errors["import_path"] = ["import_path is required: an OBS path such as obs://bucket/path/ or bucket/path/."];
        }
        else if (raw is not null && !TryObsPath(raw, out importPath))
        {
            errors["import_path"] = ["import_path must be an OBS path: obs://bucket/path/ or bucket/path/ (bucket: 3-63 of a-z, 0-9, '-', '.')."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        JobIdResult job;
        try
        {
            job = await ges.ImportBackupAsync(graphId, importPath!, context.RequestAborted);
        }
        catch (HuaweiCloudException ex)
        {
            return Upstream(ex);
        }

        var now = time.GetUtcNow();
        var run = new RunRecord
        {
            Id = "imp-" + Guid.NewGuid().ToString("N"),
            Kind = "import",
            Trigger = "http",
            GraphId = graphId,
            ImportPath = importPath,
            JobId = job.JobId,
            Status = RunStatus.Running,
            Step = "importing",
            CreatedAt = now,
            UpdatedAt = now,
            SubmittedAt = now,
            Deadline = now + backup.Value.JobDeadline,
        };
        return await FollowAsync(context, run, runs, queues, backup.Value);
    }

    /// <summary>Stores a restore or import run and, unless it already ended, starts following it on <c>operation-poll</c>.</summary>
    private static async Task<IResult> FollowAsync(HttpContext context, RunRecord run, RunStore runs, WorkQueues queues, BackupOptions backup)
    {
        await runs.CreateAsync(run, context.RequestAborted);
        if (!run.IsFinished)
        {
            await queues.SendOperationPollAsync(new PollOperationMessage(MessageParser.CurrentVersion, run.Id, 0), backup.PollInitialDelay, context.RequestAborted);
        }

        return Accepted(context, run);
    }

    internal static async Task<IResult> BackupNowAsync(HttpContext context, string graphId, RunStore runs, WorkQueues queues,
        IOptions<HttpOptions> http, IOptions<BackupOptions> backup, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        CheckId(graphId, "graphId", errors);
        var key = IdempotencyKey(context, errors);
        var (_, bodyProblem) = await ReadBodyAsync(context, http.Value, time, signed: false);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        if (backup.Value.Find(graphId) is null)
        {
            return TypedResults.Problem($"Graph {graphId} is not configured for backups (Backup__Graphs).", statusCode: 404, title: "Unknown graph");
        }

        var runId = RunId("http-", graphId, key);
        if (await runs.GetAsync(runId, context.RequestAborted) is { } existing)
        {
            return Accepted(context, existing);
        }

        // The start message goes first and the record after it, so a record never exists without a
        // message that will move it: if the send fails the caller gets 503 and no run; a retry with the
        // same key sends again. StartBackup creates the record itself when it comes first.
        await queues.SendStartAsync(new StartBackupMessage(MessageParser.CurrentVersion, runId, graphId, "http", null, Guid.NewGuid().ToString("N")), context.RequestAborted);
        var now = time.GetUtcNow();
        var (run, _) = await runs.CreateAsync(new RunRecord
        {
            Id = runId,
            GraphId = graphId,
            Trigger = "http",
            CreatedAt = now,
            UpdatedAt = now,
            Deadline = now + (backup.Value.Find(graphId)!.JobDeadline ?? backup.Value.JobDeadline),
        }, context.RequestAborted);
        return Accepted(context, run);
    }

    /// <summary>
    /// The run record. With <c>?wait=true</c> the status code follows the run, as a status endpoint
    /// should: 202 while it runs, 200 when it succeeded, 500 when it failed or partially failed — a
    /// failure is never a 2xx.
    /// </summary>
    internal static async Task<IResult> GetRunAsync(HttpContext context, string runId, string? wait, RunStore runs)
    {
        var errors = new Dictionary<string, string[]>();
        if (!HuaweiCloudIds.IsValidId(runId))
        {
            errors["runId"] = ["runId must be a run id."];
        }

        // Query values are read as text and checked here, so a bad one is a problem naming it, not an empty 400.
        bool? waitFlag = wait switch
        {
            null => null,
            _ when bool.TryParse(wait, out var flag) => flag,
            _ => null,
        };
        if (wait is not null && waitFlag is null)
        {
            errors["wait"] = ["wait must be true or false."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var run = await runs.GetAsync(runId, context.RequestAborted);
        if (run is null)
        {
            return TypedResults.Problem($"Run {runId} does not exist.", statusCode: 404, title: "Unknown run");
        }

        if (waitFlag != true)
        {
            return Results.Json(run, BackupRelayJson.Default.RunRecord);
        }

        return run.Status switch
        {
            RunStatus.Succeeded => Results.Json(run, BackupRelayJson.Default.RunRecord),
            RunStatus.Failed or RunStatus.PartiallyFailed => TypedResults.Problem(
                detail: string.Join("; ", run.Errors.Select(e => e.Reason)), statusCode: 500, title: $"Run {run.Status}",
                type: "https://backuprelay/problems/run-failed",
                extensions: new Dictionary<string, object?> { ["runId"] = run.Id, ["status"] = run.Status.ToString() }),
            _ => Accepted(context, run),
        };
    }

    internal static async Task<IResult> ListRunsAsync(HttpContext context, string? graphId, string? status, string? limit, RunStore runs)
    {
        var errors = new Dictionary<string, string[]>();
        RunStatus? filter = null;
        if (status is not null)
        {
            // By name only: Enum.TryParse would also take "1".
            if (Enum.GetNames<RunStatus>().FirstOrDefault(n => string.Equals(n, status, StringComparison.OrdinalIgnoreCase)) is { } name)
            {
                filter = Enum.Parse<RunStatus>(name);
            }
            else
            {
                errors["status"] = [$"status must be one of {string.Join(", ", Enum.GetNames<RunStatus>())}."];
            }
        }

        if (graphId is not null && !HuaweiCloudIds.IsValidId(graphId))
        {
            errors["graphId"] = ["graphId must be a GES graph id."];
        }

        int? count = null;
        if (limit is not null)
        {
            if (int.TryParse(limit, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 500)
            {
                count = n;
            }
            else
            {
                errors["limit"] = ["limit must be a whole number between 1 and 500."];
            }
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var list = await runs.ListAsync(graphId, filter, count ?? 50, context.RequestAborted);
        return Results.Json(list, BackupRelayJson.Default.ListRunRecord);
    }

    /// <summary>Storage and Huawei Cloud as last probed (shared, cached briefly; see <see cref="HealthProbe"/>).</summary>
    internal static async Task<IResult> HealthAsync(HealthProbe probe, GraphStatusService graphs)
    {
        var report = await probe.CheckAsync();

        // Stale graphs and graphs whose restore is unproven make the app "degraded": still 200, so a plain uptime probe sees the word and
        // the names, while a dependency outage stays 503. Bounded like the probes; the newest known
        // statuses serve when the run store is slow.
        IReadOnlyList<GraphStatus>? statuses;
        try
        {
            statuses = await graphs.GetAsync().WaitAsync(HealthProbe.ProbeTimeout);
        }
        catch (Exception ex) when (ex is TimeoutException || StorageErrors.Find(ex) is not null)
        {
            statuses = graphs.Latest;
        }

        var stale = statuses?.Where(g => g.State == FreshnessState.Stale).Select(g => g.GraphId).ToList() ?? [];
        var unproven = statuses?.Where(g => g.RestoreUnproven).Select(g => g.GraphId).ToList() ?? [];
        var problems = new List<string>();
        if (stale.Count > 0)
        {
            problems.Add($"stale: {string.Join(", ", stale)}");
        }

        if (unproven.Count > 0)
        {
            problems.Add($"restore unproven: {string.Join(", ", unproven)}");
        }

        var body = new Dictionary<string, object?>
        {
            ["status"] = !report.Healthy ? "unhealthy" : problems.Count > 0 ? "degraded" : report.Starting ? "starting" : "healthy",
            ["storage"] = report.Storage ?? "ok",
            ["huaweiCloud"] = report.HuaweiCloud ?? (report.Starting ? "checking (first check since start-up)" : "ok"),
            ["destination"] = report.Destination ?? "ok",
            ["graphs"] = statuses is null ? "not evaluated yet" : problems.Count > 0 ? string.Join("; ", problems) : "ok",
            ["staleGraphs"] = stale,
            ["restoreUnprovenGraphs"] = unproven,
            ["checkedAt"] = report.CheckedAt,
        };
        return Results.Json(body, statusCode: report.Healthy ? 200 : 503);
    }

    /// <summary>Every configured graph: schedule, next occurrence, last run, last verified copy, freshness.</summary>
    internal static async Task<IResult> ListGraphsAsync(GraphStatusService graphs) =>
        Results.Json([.. await graphs.GetAsync()], BackupRelayJson.Default.ListGraphStatus);

    internal static async Task<IResult> GetGraphAsync(string graphId, GraphStatusService graphs)
    {
        var errors = new Dictionary<string, string[]>();
        CheckId(graphId, "graphId", errors);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        return (await graphs.GetAsync()).FirstOrDefault(g => g.GraphId == graphId) is { } status
            ? Results.Json(status, BackupRelayJson.Default.GraphStatus)
            : Results.Problem(statusCode: 404, title: "Graph not configured", detail: $"graphId {graphId} is not in Backup__Graphs.");
    }

    private static IResult Accepted(HttpContext context, RunRecord run)
    {
        context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new AcceptedWithLocation($"/api/runs/{run.Id}", Results.Json(run, BackupRelayJson.Default.RunRecord, statusCode: 202));
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

    private static async Task<(JsonElement? Body, IResult? Problem)> ReadBodyAsync(HttpContext context, HttpOptions options, TimeProvider time, bool signed)
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

        var bytes = buffer.ToArray();
        if (signed && options.WebhookSecret is { Length: > 0 } secret)
        {
            // The target as it arrived (the Functions host forwards the original path and query).
            var target = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget
                ?? (request.Path + request.QueryString).ToString();
            var problem = WebhookSignature.Check(secret, request.Headers[WebhookSignature.Header], time.GetUtcNow(), options.SignatureTolerance,
                request.Method, target, bytes, options.AcceptLegacySignatures, out var accepted);
            if (problem is null && !await context.RequestServices.GetRequiredService<SignatureReplayGuard>().FirstUseAsync(accepted!, context.RequestAborted))
            {
                problem = "this signature was already accepted once: sign each request anew";
            }

            if (problem is not null)
            {
                return (null, TypedResults.Problem(problem, statusCode: 401, title: "Invalid webhook signature"));
            }
        }

        if (bytes.Length == 0)
        {
            return (null, null);
        }

        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = ["The body must be UTF-8 JSON."] }));
        }

        try
        {
            // A property given twice is ambiguous (parsers disagree on which wins): refused, not "last wins".
            using var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowDuplicateProperties = false });
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = ["The body must be a JSON object."] }));
            }

            return (document.RootElement.Clone(), null);
        }
        catch (JsonException ex) when (ex.Message.Contains("duplicate", StringComparison.OrdinalIgnoreCase))
        {
            return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = [$"The body repeats a property: {ex.Message}"] }));
        }
        catch (JsonException ex)
        {
            return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = [$"The body is not valid JSON: {ex.Message}"] }));
        }
    }

    private static string? OptionalString(JsonElement? body, string field, int maxLength, Dictionary<string, string[]> errors)
    {
        if (body is not { } b || !b.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            errors[field] = [$"{field} must be a string."];
            return null;
        }

        var text = value.GetString()!;
        if (text.Length == 0 || text.Length > maxLength)
        {
            errors[field] = [$"{field} must be 1-{maxLength} characters."];
            return null;
        }

        return text;
    }

    /// <summary>The <c>Idempotency-Key</c> header ("" when absent); over 200 characters is an error naming it.</summary>
    private static string IdempotencyKey(HttpContext context, Dictionary<string, string[]> errors)
    {
        var key = context.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length > 200)
        {
            errors["Idempotency-Key"] = ["Idempotency-Key must be at most 200 characters."];
        }

        return key;
    }

    /// <summary>A run id: derived from (graph, key) so the same request with the same key is the same run; a new one without a key.</summary>
    private static string RunId(string prefix, string graphId, string key) => key.Length > 0
        ? prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(graphId + "\n" + key)))[..32]
        : prefix + Guid.NewGuid().ToString("N");

    private static void CheckId(string value, string field, Dictionary<string, string[]> errors)
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
    private static partial Regex ObsPath();

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
