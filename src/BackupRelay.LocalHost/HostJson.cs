using System.Globalization;
using System.Text.Json.Nodes;

namespace BackupRelay.LocalHost;

/// <summary>
/// What the local host reads of the app's <c>host.json</c>, with the Functions runtime's defaults:
/// <c>extensions.queues</c>, <c>extensions.http.routePrefix</c> and <c>functionTimeout</c>.
/// </summary>
public sealed record HostJson
{
    public int BatchSize { get; init; } = 16;

    /// <summary>Unset in host.json: batchSize / 2 per core, as the runtime computes it.</summary>
    public int NewBatchThreshold { get; init; } = 8 * Environment.ProcessorCount;
    public int MaxDequeueCount { get; init; } = 5;
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.Zero;
    public TimeSpan MaxPollingInterval { get; init; } = TimeSpan.FromMinutes(1);
    public bool Base64 { get; init; } = true;
    public string RoutePrefix { get; init; } = "api";
    public TimeSpan FunctionTimeout { get; init; } = TimeSpan.FromMinutes(30);

    public static HostJson Read(string path)
    {
        var root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new() { CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true })!;
        var queues = root["extensions"]?["queues"];
        var batch = queues?["batchSize"]?.GetValue<int>() ?? 16;
        return new HostJson
        {
            BatchSize = Math.Clamp(batch, 1, 32),
            NewBatchThreshold = queues?["newBatchThreshold"]?.GetValue<int>() ?? batch / 2 * Environment.ProcessorCount,
            MaxDequeueCount = Math.Max(1, queues?["maxDequeueCount"]?.GetValue<int>() ?? 5),
            VisibilityTimeout = Time(queues?["visibilityTimeout"]) ?? TimeSpan.Zero,
            MaxPollingInterval = Time(queues?["maxPollingInterval"]) ?? TimeSpan.FromMinutes(1),
            Base64 = !string.Equals(queues?["messageEncoding"]?.GetValue<string>(), "none", StringComparison.OrdinalIgnoreCase),
            RoutePrefix = root["extensions"]?["http"]?["routePrefix"]?.GetValue<string>() ?? "api",
            FunctionTimeout = Time(root["functionTimeout"]) ?? TimeSpan.FromMinutes(30),
        };

        static TimeSpan? Time(JsonNode? node) => node is null ? null : TimeSpan.Parse(node.GetValue<string>(), CultureInfo.InvariantCulture);
    }
}
