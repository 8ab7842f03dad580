using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Functions.Hosting;

/// <summary>
/// Puts the invocation id where the worker's gRPC logger looks for it, so the Functions host can tie every log line the
/// app writes during an invocation to that invocation (a user log naming no running invocation is dropped by the
/// host, and never reaches the function's logs in Application Insights).
/// <para>
/// Written here because the worker does not do it in this configuration: with OpenTelemetry
/// (<c>UseFunctionsWorkerDefaults</c>) the worker uses schema 1.37.0, whose invocation scope carries only
/// <c>faas.invocation_id</c>, while its gRPC logger reads <c>AzureFunctions_InvocationId</c>
/// (Azure/azure-functions-dotnet-worker#3489). Both keys are pushed; the scope is the factory's, shared by every logger.
/// </para>
/// </summary>
internal sealed class InvocationLogScope(ILogger<InvocationLogScope> logger) : IFunctionsWorkerMiddleware
{
    /// <summary>The scope key the worker's gRPC logger copies into <c>RpcLog.invocation_id</c>.</summary>
    public const string InvocationIdKey = "AzureFunctions_InvocationId";

    public async Task Invoke(FunctionContext context, FunctionExecutionDelegate next)
    {
        using (logger.BeginScope(new KeyValuePair<string, object>[]
        {
            new(InvocationIdKey, context.InvocationId),
            new("AzureFunctions_FunctionName", context.FunctionDefinition.Name),
        }))
        {
            await next(context);
        }
    }
}
