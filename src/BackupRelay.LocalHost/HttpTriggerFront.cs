using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Azure.Functions.Worker.Grpc.Messages;
using Yarp.ReverseProxy.Forwarder;

namespace BackupRelay.LocalHost;

/// <summary>
/// HTTP triggers as the Functions host serves them with the worker's ASP.NET Core integration: the
/// route (host.json's prefix + the binding's route) picks the function — no route is 404, a route
/// without the method 405 — its <c>authLevel</c> is checked against the keys (<c>x-functions-key</c> or
/// <c>?code=</c>; function level: a host key, the master key or the function's own key) — 401 — all
/// before the worker sees anything. Then the invocation is sent and the request itself forwarded to the
/// worker's <c>HttpUri</c> with <c>x-ms-invocation-id</c>; the worker answers it.
/// </summary>
public sealed partial class HttpTriggerFront(LocalFunctionsHost host, IHttpForwarder forwarder, ILogger<HttpTriggerFront> logger)
{
    private readonly HttpMessageInvoker _client = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        UseCookies = false,
    });

    private (IReadOnlyDictionary<string, FunctionEntry> Functions, List<(FunctionEntry Function, TemplateMatcher Matcher, string[] Methods)> Routes)? _routes;

    public async Task HandleAsync(HttpContext context)
    {
        // A request that arrives while the worker starts waits for its functions (the routes come from them).
        var worker = await host.ReadyWorkerAsync(context.RequestAborted);
        var workerUri = worker.Channel.HttpUri ?? throw new InvalidOperationException("the worker did not offer an HTTP endpoint (HttpUri)");
        var functions = host.Functions;
        if (_routes is not { } cached || !ReferenceEquals(cached.Functions, functions))
        {
            _routes = cached = (functions, Routes(functions));
        }

        var routes = cached.Routes;
        var path = context.Request.Path;
        var matched = routes.Select(r => (Route: r, Values: new RouteValueDictionary()))
            .Where(x => x.Route.Matcher.TryMatch(path, x.Values)).ToList();
        if (matched.Count == 0)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        var method = context.Request.Method;
        var chosen = matched.FirstOrDefault(x => x.Route.Methods.Length == 0 || x.Route.Methods.Contains(method, StringComparer.OrdinalIgnoreCase));
        if (chosen.Route.Function is null)
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        var function = chosen.Route.Function;
        if (!Authorized(context.Request, function))
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        var invocationId = Guid.NewGuid().ToString();
        var invocation = host.InvokeAsync(function.Name, request =>
        {
            request.InvocationId = invocationId;
            request.InputData.Add(new ParameterBinding
            {
                Name = function.BindingName,
                Data = new TypedData { Http = new RpcHttp { Method = method, Url = $"{host.HttpAddress.ToString().TrimEnd('/')}{path}{context.Request.QueryString}" } },
            });
            foreach (var (name, value) in chosen.Values)
            {
                request.TriggerMetadata[name] = new TypedData { String = value?.ToString() ?? "" };
            }

            request.TriggerMetadata["Query"] = new TypedData { Json = JsonSerializer.Serialize(context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString())) };
        }, context.RequestAborted);

        var error = await forwarder.SendAsync(context, workerUri.ToString().TrimEnd('/'), _client, ForwarderRequestConfig.Empty,
            new InvocationTransformer(invocationId));
        if (error != ForwarderError.None)
        {
            Log.ForwardFailed(logger, function.Name, error.ToString());
        }

        try
        {
            var response = await invocation;
            if (response.Result.Status != StatusResult.Types.Status.Success)
            {
                Log.InvocationFailed(logger, function.Name, response.Result.Exception?.Message ?? response.Result.Status.ToString());
            }
        }
        catch (Exception ex) when (ex is WorkerGoneException or TimeoutException or OperationCanceledException)
        {
            Log.InvocationFailed(logger, function.Name, ex.Message);
        }
    }

    private bool Authorized(HttpRequest request, FunctionEntry function)
    {
        var level = function.Property("authLevel") ?? "Function";
        if (string.Equals(level, "Anonymous", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var given = request.Headers["x-functions-key"].ToString();
        if (given.Length == 0)
        {
            given = request.Query["code"].ToString();
        }

        if (given.Length == 0)
        {
            return false;
        }

        var options = host.Options;
        var accepted = new List<string?> { options.MasterKey };
        if (!string.Equals(level, "Admin", StringComparison.OrdinalIgnoreCase))
        {
            accepted.AddRange(options.HostKeys);
            accepted.Add(options.FunctionKeys.GetValueOrDefault(function.Name));
        }

        var givenBytes = Encoding.UTF8.GetBytes(given);
        var match = false;
        foreach (var key in accepted.OfType<string>().Where(k => k.Length > 0))
        {
            match |= CryptographicOperations.FixedTimeEquals(givenBytes, Encoding.UTF8.GetBytes(key));
        }

        return match;
    }

    private List<(FunctionEntry, TemplateMatcher, string[])> Routes(IReadOnlyDictionary<string, FunctionEntry> functions)
    {
        var prefix = host.HostJson.RoutePrefix.Trim('/');
        return
        [
            .. functions.Values.Where(f => f.TriggerType == "httpTrigger").Select(f =>
            {
                var route = (f.Property("route") ?? f.Name).Trim('/');
                var template = TemplateParser.Parse(prefix.Length == 0 ? route : $"{prefix}/{route}");
                var methods = f.Trigger["methods"]?.AsArray().Select(m => m!.GetValue<string>()).ToArray() ?? [];
                return (f, new TemplateMatcher(template, new RouteValueDictionary()), methods);
            })
            // Literal routes before parameterised ones, as ASP.NET Core routing orders them.
            .OrderBy(r => r.Item2.Template.Segments.Count(s => s.Parts.Any(p => p.IsParameter))),
        ];
    }

    private sealed class InvocationTransformer(string invocationId) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix,
            CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            proxyRequest.Headers.Add("x-ms-invocation-id", invocationId);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1050, LogLevel.Warning, "{Function}: forwarding the request to the worker failed ({Error})")]
        public static partial void ForwardFailed(ILogger logger, string function, string error);

        [LoggerMessage(1051, LogLevel.Warning, "{Function}: the invocation failed: {Reason}")]
        public static partial void InvocationFailed(ILogger logger, string function, string reason);
    }
}
