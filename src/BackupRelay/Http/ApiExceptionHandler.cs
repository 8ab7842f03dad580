using BackupRelay.Storage;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Http;

/// <summary>
/// What an exception escaping an endpoint becomes: storage unreachable or failing is 503 with
/// <c>Retry-After</c> (the caller may try again; nothing was half done that a retry would repeat
/// wrongly), anything else a 500 — both problem+json, never a secret, never an empty body.
/// </summary>
public sealed partial class ApiExceptionHandler(IProblemDetailsService problems, ILogger<ApiExceptionHandler> logger) : IExceptionHandler
{
    public const int RetryAfterSeconds = 30;

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var storage = StorageErrors.Find(exception);
        ProblemDetails problem;
        if (storage is not null)
        {
            Log.StorageUnavailable(logger, context.Request.Path, StorageErrors.Describe(storage));
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            problem = new ProblemDetails
            {
                Status = 503,
                Title = "Storage unavailable",
                Detail = $"The app's storage did not answer as expected ({StorageErrors.Describe(storage)}); try again later.",
            };
        }
        else
        {
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            problem = new ProblemDetails { Status = 500, Title = "Unexpected error", Detail = "The request failed; the error is in the app's logs." };
        }

        problem.Extensions["traceId"] = context.TraceIdentifier;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem, Exception = exception });
    }

    /// <summary>The route did not finish within <paramref name="bound"/> (storage or Huawei Cloud hung): 503 + Retry-After, logged.</summary>
    public IResult TimedOut(HttpContext context, TimeSpan bound)
    {
        Log.TimedOut(logger, context.Request.Path, bound);
        context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(
            $"The request did not finish within {bound.TotalSeconds:0.#} s (Http__RequestTimeout): the app's storage or Huawei Cloud is not answering. " +
            "Whatever it started is safe to ask for again.",
            statusCode: StatusCodes.Status503ServiceUnavailable, title: "Not answered in time",
            extensions: new Dictionary<string, object?> { ["traceId"] = context.TraceIdentifier });
    }

    private static partial class Log
    {
        [LoggerMessage(119, LogLevel.Warning, "{Path}: not finished within {Bound}; answered 503")]
        public static partial void TimedOut(ILogger logger, string path, TimeSpan bound);

        [LoggerMessage(84, LogLevel.Warning, "{Path}: storage unavailable ({Reason}); answered 503")]
        public static partial void StorageUnavailable(ILogger logger, string path, string reason);
    }
}
