namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// Middleware pieces around every emulated call: request id, request log, injected faults and
/// gateway authentication.
/// </summary>
internal static class Faults
{
    public const string JobFaultItem = "JobFault";
    private const string FaultsItem = "Faults";

    public static IReadOnlyList<FaultSpec> Of(HttpContext context) =>
        context.Items.TryGetValue(FaultsItem, out var f) ? (List<FaultSpec>)f! : [];

    public static void UseEmulatorPipeline(this WebApplication app)
    {
        var state = app.Services.GetRequiredService<EmulatorState>();
        app.Use(async (context, next) =>
        {
            var requestId = EmulatorState.NewHexId();
            context.Items["RequestId"] = requestId;
            context.Response.Headers["X-Request-Id"] = requestId;
            var path = context.Request.Path.Value ?? "/";
            if (path.StartsWith("/_emulator", StringComparison.Ordinal))
            {
                await next(context);
                return;
            }

            state.Began(context.Request.Method, path);
            try
            {
                await RunAsync(context, next, state, path);
            }
            finally
            {
                // Recorded before it counts as ended: a request no longer in flight is in the record.
                state.Record(new RecordedRequest(state.Now, context.Request.Method, path,
                    context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted ? 0 : context.Response.StatusCode,
                    context.Items.TryGetValue(BodyBytesItem, out var bytes) && bytes is long written ? written : 0));
                state.Ended(context.Request.Method, path);
            }
        });
    }

    /// <summary>Where a download counts the bytes of its body it wrote (for <see cref="RecordedRequest.BodyBytes"/>).</summary>
    public const string BodyBytesItem = "emulator.body-bytes";

    private static async Task RunAsync(HttpContext context, RequestDelegate next, EmulatorState state, string path)
    {
        var faults = state.Faults.Take(context.Request.Method, path);
        context.Items[FaultsItem] = faults;
        var isObs = path.StartsWith("/obs/", StringComparison.Ordinal);
        foreach (var latency in faults.Where(f => f.Kind == "latency"))
        {
            // A slow server keeps going when the client gives up: the request is still processed.
            await Task.Delay(latency.DelayMs, CancellationToken.None);
        }

        if (faults.FirstOrDefault(f => f.Kind == "status") is { } status)
        {
            if (status.RetryAfterSeconds is { } retryAfter)
            {
                context.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            var body = status.ErrorCode is { } code && !isObs
                ? Responses.Ges(context, status.Status, code, status.ErrorMessage ?? "Injected error.")
                : StatusBody(context, status.Status, isObs);
            await body.ExecuteAsync(context);
            return;
        }

        // The gateway's throttling of GES calls, per project.
        if (path.StartsWith("/v2/", StringComparison.Ordinal) && path.Contains("/graphs", StringComparison.Ordinal)
            && state.GesRateLimiter.TryTake(path.Split('/')[2], state.Settings.GesRequestsPerSecond, out var retryAfterSeconds) is false)
        {
            context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            state.CountThrottled();
            await Responses.Ges(context, 429, "APIG.0308",
                $"The throttling threshold has been reached: policy user over ratelimit, limit:{state.Settings.GesRequestsPerSecond}, time:1 second").ExecuteAsync(context);
            return;
        }

        if (!isObs && faults.Any(f => f.Kind == "drop"))
        {
            context.Abort();
            return;
        }

        if (faults.FirstOrDefault(f => f.Kind is "failJob" or "hangJob") is { } job)
        {
            context.Items[JobFaultItem] = new JobFault(job.Kind == "hangJob" ? "success" : job.Outcome,
                job.Reason ?? "Injected failure: the graph engine could not complete the job.", job.Kind == "hangJob");
        }

        if (path.StartsWith("/v2/", StringComparison.Ordinal) || path.StartsWith("/cseengine/", StringComparison.Ordinal))
        {
            if (await RequestAuthentication.AuthenticateAsync(context, state) is { } denied)
            {
                await denied.ExecuteAsync(context);
                return;
            }
        }

        if (faults.FirstOrDefault(f => f.Kind == "lostResponse") is { } lost)
        {
            // Carry the request out, throw its answer away.
            var original = context.Response.Body;
            context.Response.Body = Stream.Null;
            await next(context);
            context.Response.Body = original;
            context.Response.Clear();
            await StatusBody(context, lost.Status, isObs).ExecuteAsync(context);
            return;
        }

        await next(context);
    }

    private static IResult StatusBody(HttpContext context, int status, bool obs) => obs
        ? status switch
        {
            503 => Responses.Obs(context, 503, "ServiceUnavailable", "Please reduce your request rate."),
            429 => Responses.Obs(context, 429, "TooManyRequests", "Please reduce your request rate."),
            _ => Responses.Obs(context, status, "InternalError", "We encountered an internal error. Please try again."),
        }
        : status switch
        {
            429 => Responses.Ges(context, 429, "APIG.0308", "The throttling threshold has been reached: policy user over ratelimit, limit:20, time:1 second"),
            408 => Responses.Ges(context, 408, "GES.7005", "The graph engine is unavailable."),
            503 => Responses.Ges(context, 503, "APIG.0201", "Backend unavailable."),
            _ => Responses.Ges(context, status, "GES.7006", "The underlying graph engine has internal error."),
        };
}
