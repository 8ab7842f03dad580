using System.Globalization;
using System.Text.Json.Nodes;

namespace BackupRelay.Hosting;

/// <summary>
/// What the app and the local Functions host read of the app's <c>host.json</c> — <c>extensions.queues</c>,
/// <c>extensions.http.routePrefix</c>, <c>functionTimeout</c> and <c>telemetryMode</c> — with the Functions runtime's defaults and, as the
/// runtime applies them, the app settings that override it (<c>AzureFunctionsJobHost__extensions__queues__maxDequeueCount</c>
/// and the like: an app setting is an environment variable of the host and the worker alike). One reader for both:
/// the worker's last-delivery rule uses the <c>maxDequeueCount</c> the runtime's queue listener uses.
/// </summary>
public sealed record HostJson
{
    /// <summary>The prefix of an app setting that overrides a host.json value (<c>:</c> or <c>__</c> between the parts).</summary>
    public const string OverridePrefix = "AzureFunctionsJobHost__";

    public int BatchSize { get; init; } = 16;

    /// <summary>Unset: batchSize / 2 per core, as the runtime computes it (up to <c>BatchSize + NewBatchThreshold</c> run at once).</summary>
    public int NewBatchThreshold { get; init; } = 8 * Environment.ProcessorCount;

    /// <summary>Deliveries of a message before the runtime moves it to <c>&lt;queue&gt;-poison</c>.</summary>
    public int MaxDequeueCount { get; init; } = 5;

    /// <summary>Delay before a failed message is delivered again.</summary>
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.Zero;

    public TimeSpan MaxPollingInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Queue messages are base64 (<c>messageEncoding</c> other than <c>none</c>).</summary>
    public bool Base64 { get; init; } = true;

    public string RoutePrefix { get; init; } = "api";

    /// <summary>How long an invocation may run before the runtime cancels it and restarts the worker.</summary>
    public TimeSpan FunctionTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// <c>telemetryMode</c>: how the host treats telemetry. <c>OpenTelemetry</c> with a worker that exports its own
    /// (capability <c>WorkerOpenTelemetryEnabled</c>): the host leaves the worker's logs to the worker's exporter instead
    /// of sending them a second time. Absent: the host's Application Insights SDK mode.
    /// </summary>
    public string? TelemetryMode { get; init; }

    /// <summary>
    /// The app's host.json: in the app's folder as the Functions host names it to the worker
    /// (<c>FUNCTIONS_APPLICATION_DIRECTORY</c>, <c>AzureWebJobsScriptRoot</c>), else beside the executable.
    /// </summary>
    public static string AppHostJsonPath()
    {
        var folder = new[] { "FUNCTIONS_APPLICATION_DIRECTORY", "AzureWebJobsScriptRoot", "FUNCTIONS_APP_ROOT_PATH" }
            .Select(Environment.GetEnvironmentVariable)
            .FirstOrDefault(d => !string.IsNullOrEmpty(d) && File.Exists(Path.Combine(d, "host.json")));
        return Path.Combine(folder ?? AppContext.BaseDirectory, "host.json");
    }

    /// <summary>
    /// Reads <paramref name="path"/> (absent: the runtime's defaults) and applies the overrides <paramref name="setting"/>
    /// finds, asked by their <c>AzureFunctionsJobHost__a__b</c> names. A value that does not parse names its setting.
    /// </summary>
    public static HostJson Read(string? path, Func<string, string?> setting)
    {
        var root = path is not null && File.Exists(path)
            ? JsonNode.Parse(File.ReadAllText(path), documentOptions: new() { CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true })
            : null;

        string? Value(string jsonPath)
        {
            var name = OverridePrefix + jsonPath.Replace(".", "__", StringComparison.Ordinal);
            if (setting(name) is { Length: > 0 } overridden)
            {
                return overridden;
            }

            var node = root;
            foreach (var part in jsonPath.Split('.'))
            {
                node = node is JsonObject o ? o.FirstOrDefault(p => string.Equals(p.Key, part, StringComparison.OrdinalIgnoreCase)).Value : null;
            }

            return node?.ToString();
        }

        int? Int(string jsonPath) => Value(jsonPath) is { } text
            ? int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw Bad(jsonPath, text, "a whole number")
            : null;

        TimeSpan? Time(string jsonPath) => Value(jsonPath) is { } text
            ? TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var t) ? t : throw Bad(jsonPath, text, "a duration (hh:mm:ss)")
            : null;

        var batch = Math.Clamp(Int("extensions.queues.batchSize") ?? 16, 1, 32);
        return new HostJson
        {
            BatchSize = batch,
            NewBatchThreshold = Math.Max(0, Int("extensions.queues.newBatchThreshold") ?? batch / 2 * Environment.ProcessorCount),
            MaxDequeueCount = Math.Max(1, Int("extensions.queues.maxDequeueCount") ?? 5),
            VisibilityTimeout = Time("extensions.queues.visibilityTimeout") ?? TimeSpan.Zero,
            MaxPollingInterval = Time("extensions.queues.maxPollingInterval") ?? TimeSpan.FromMinutes(1),
            Base64 = !string.Equals(Value("extensions.queues.messageEncoding"), "none", StringComparison.OrdinalIgnoreCase),
            RoutePrefix = Value("extensions.http.routePrefix") ?? "api",
            FunctionTimeout = Time("functionTimeout") ?? TimeSpan.FromMinutes(30),
            TelemetryMode = Value("telemetryMode"),
        };

        static FormatException Bad(string jsonPath, string text, string what) =>
            new($"host.json's {jsonPath} (or the app setting {OverridePrefix}{jsonPath.Replace(".", "__", StringComparison.Ordinal)}) is '{text}', not {what}.");
    }
}
