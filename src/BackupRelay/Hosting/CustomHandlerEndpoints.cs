using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BackupRelay.Messaging;
using BackupRelay.Scheduling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Hosting;

/// <summary>
/// The Azure Functions custom-handler contract: <c>POST /{FunctionName}</c> with
/// <c>{"Data": {...}, "Metadata": {...}}</c>, answered with <c>{"Outputs", "Logs", "ReturnValue"}</c>.
/// The host's quirks are decoded: strings JSON-encoded twice, numbers sent as strings, extra keys.
/// </summary>
public static class CustomHandlerEndpoints
{
    /// <summary>The binding name of every queue trigger in function.json.</summary>
    public const string QueueBinding = "message";

    /// <summary>The binding name of the timer trigger.</summary>
    public const string TimerBinding = "timer";

    public static IEndpointRouteBuilder MapCustomHandler(this IEndpointRouteBuilder app)
    {
        // The host polls GET / until anything answers.
        app.MapGet("/", () => Results.Ok("BackupRelay custom handler"));
        app.MapPost("/" + FunctionNames.ScheduleBackups, async (HttpContext context, ScheduleBackupsHandler handler) =>
        {
            var payload = await ReadPayloadAsync(context);
            var runs = await handler.HandleAsync(null, context.RequestAborted);
            return Invocation(200, [$"ScheduleBackups: {runs.Count} runs queued (past due: {IsPastDue(payload)})"]);
        });

        var invoker = app.ServiceProvider.GetRequiredService<FunctionInvoker>();
        var limits = app.ServiceProvider.GetRequiredService<HostQueueOptions>();
        var metrics = app.ServiceProvider.GetRequiredService<Telemetry.BackupRelayMetrics>();
        foreach (var function in invoker.Functions)
        {
            app.MapPost("/" + function.Name, async (HttpContext context) =>
            {
                var payload = await ReadPayloadAsync(context);
                if (payload is null)
                {
                    return Invocation(200, [$"{function.Name}: the invocation body is not JSON; nothing to do"]);
                }

                var message = QueueMessage(payload);
                var dequeueCount = DequeueCount(payload);
                var result = await invoker.InvokeAsync(function, message, dequeueCount, context.RequestAborted);
                if (result.Outcome == HandlerOutcome.Retry && dequeueCount >= limits.MaxDequeueCount)
                {
                    // The host moves the message to the poison queue after this answer.
                    metrics.Parked(function.Queue, function.Name);
                }

                return result.Outcome switch
                {
                    HandlerOutcome.Retry => Invocation(500, [$"{function.Name}: will retry: {result.Reason}"]),
                    HandlerOutcome.Park => Invocation(200, [$"{function.Name}: parked in {Configuration.QueueNames.Poison(function.Queue)}: {result.Reason}"]),
                    _ => Invocation(200, []),
                };
            });
        }

        return app;
    }

    private static async Task<JsonObject?> ReadPayloadAsync(HttpContext context)
    {
        try
        {
            return await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The queue message text: unwrapped once more when the host encoded the string twice.</summary>
    public static string? QueueMessage(JsonObject payload)
    {
        var value = payload["Data"]?[QueueBinding];
        switch (value)
        {
            case null:
                return null;
            case JsonValue v when v.TryGetValue<string>(out var text):
                var trimmed = text.Trim();
                if (trimmed.StartsWith('"'))
                {
                    try
                    {
                        return JsonSerializer.Deserialize<string>(trimmed) ?? text;
                    }
                    catch (JsonException)
                    {
                        return text;
                    }
                }

                return text;
            default:
                // An object or array: the docs' idealised form, already parsed.
                return value.ToJsonString();
        }
    }

    /// <summary><c>Metadata.DequeueCount</c>, a number or a string (possibly JSON-encoded again).</summary>
    public static long DequeueCount(JsonObject payload)
    {
        var node = payload["Metadata"]?["DequeueCount"];
        if (node is JsonValue value)
        {
            if (value.TryGetValue<long>(out var n))
            {
                return n;
            }

            if (value.TryGetValue<string>(out var s) && long.TryParse(s.Trim('"'), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed))
            {
                return parsed;
            }
        }

        return 1;
    }

    private static bool IsPastDue(JsonObject? payload) =>
        payload?["Data"]?[TimerBinding]?["IsPastDue"] is JsonValue v && (v.TryGetValue<bool>(out var b) ? b : v.TryGetValue<string>(out var s) && s == "true");

    private static IResult Invocation(int status, List<string> logs) =>
        Results.Json(new JsonObject
        {
            ["Outputs"] = new JsonObject(),
            ["Logs"] = new JsonArray([.. logs.Select(l => (JsonNode?)JsonValue.Create(l))]),
            ["ReturnValue"] = null,
        }, statusCode: status);
}
