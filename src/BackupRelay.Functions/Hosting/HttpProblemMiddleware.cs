using BackupRelay.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using Microsoft.Extensions.Options;

namespace BackupRelay.Functions.Hosting;

/// <summary>
/// The app's own HTTP errors as problem+json, for HTTP functions only: a URL longer than
/// <see cref="HttpApi.MaxUrlLength"/> is 414 before the handler runs, and an exception escaping a handler
/// (storage down: 503 + Retry-After; anything else: 500) is answered by <see cref="ApiExceptionHandler"/>
/// instead of the worker's empty 500. Every route but health (bounded on its own) answers within
/// <c>Http__RequestTimeout</c>: the request's <see cref="HttpContext.RequestAborted"/> is cancelled then, and what it
/// was waiting for (a hung storage account, a slow Huawei Cloud) becomes 503 + Retry-After.
/// 401/404/405 are the Functions host's: such requests never get here.
/// </summary>
internal sealed class HttpProblemMiddleware(ApiExceptionHandler exceptions, IOptions<HttpOptions> options) : IFunctionsWorkerMiddleware
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

        var caller = http.RequestAborted;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(caller, context.CancellationToken);
        if (context.FunctionDefinition.Name != "Health")
        {
            bound.CancelAfter(options.Value.RequestTimeout);
        }

        http.RequestAborted = bound.Token;
        try
        {
            await next(context);
        }
        catch (Exception) when (!http.Response.HasStarted && bound.IsCancellationRequested && !caller.IsCancellationRequested
            && !context.CancellationToken.IsCancellationRequested)
        {
            context.GetInvocationResult().Value = exceptions.TimedOut(http, options.Value.RequestTimeout);
        }
        catch (Exception ex) when (!http.Response.HasStarted)
        {
            await exceptions.TryHandleAsync(http, ex, context.CancellationToken);
            context.GetInvocationResult().Value = Results.Empty;
        }
        finally
        {
            http.RequestAborted = caller;
        }
    }
}
