using BackupRelay.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;

namespace BackupRelay.Functions.Hosting;

/// <summary>
/// The app's own HTTP errors as problem+json, for HTTP functions only: a URL longer than
/// <see cref="HttpApi.MaxUrlLength"/> is 414 before the handler runs, and an exception escaping a handler
/// (storage down: 503 + Retry-After; anything else: 500) is answered by <see cref="ApiExceptionHandler"/>
/// instead of the worker's empty 500. 401/404/405 are the Functions host's: such requests never get here.
/// </summary>
internal sealed class HttpProblemMiddleware(ApiExceptionHandler exceptions) : IFunctionsWorkerMiddleware
{
    public async Task Invoke(FunctionContext context, FunctionExecutionDelegate next)
    {
        if (context.GetHttpContext() is not { } http)
        {
            await next(context);
            return;
        }

        if (HttpApi.IsUrlTooLong(http.Request))
        {
            context.GetInvocationResult().Value = TypedResults.Problem(
                $"The URL is longer than {HttpApi.MaxUrlLength} characters.", statusCode: StatusCodes.Status414UriTooLong, title: "URL too long");
            return;
        }

        try
        {
            await next(context);
        }
        catch (Exception ex) when (!http.Response.HasStarted)
        {
            await exceptions.TryHandleAsync(http, ex, context.CancellationToken);
            context.GetInvocationResult().Value = Results.Empty;
        }
    }
}
