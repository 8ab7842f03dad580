using System.Globalization;
using System.Text.Json;

namespace BackupRelay.Hosting;

/// <summary>
/// The queue-trigger settings of <c>host.json</c> (<c>extensions.queues</c>), with the Functions
/// defaults: the app reads <c>maxDequeueCount</c> for its last-delivery rule.
/// </summary>
public sealed class HostQueueOptions
{
    public int BatchSize { get; set; } = 16;
    public int MaxDequeueCount { get; set; } = 5;

    /// <summary>
    /// The Functions host fetches another batch once no more than this many invocations of a function
    /// are running (so up to <c>BatchSize + NewBatchThreshold</c> at once); unset: batchSize / 2 per vCPU.
    /// </summary>
    public int NewBatchThreshold
    {
        get => _newBatchThreshold ?? (BatchSize / 2 * Environment.ProcessorCount);
        set => _newBatchThreshold = value;
    }

    private int? _newBatchThreshold;

    /// <summary>Delay before a failed message is retried.</summary>
    public TimeSpan VisibilityTimeout { get; set; } = TimeSpan.Zero;

    public TimeSpan MaxPollingInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The app's host.json: in the app's folder as the Functions host names it to the worker
    /// (<c>FUNCTIONS_APPLICATION_DIRECTORY</c>, <c>AzureWebJobsScriptRoot</c>), else beside the executable.
    /// </summary>
    public static string AppHostJson()
    {
        var folder = new[] { "FUNCTIONS_APPLICATION_DIRECTORY", "AzureWebJobsScriptRoot", "FUNCTIONS_APP_ROOT_PATH" }
            .Select(Environment.GetEnvironmentVariable)
            .FirstOrDefault(d => !string.IsNullOrEmpty(d) && File.Exists(Path.Combine(d, "host.json")));
        return Path.Combine(folder ?? AppContext.BaseDirectory, "host.json");
    }

    public static HostQueueOptions Load(string? hostJsonPath)
    {
        var options = new HostQueueOptions();
        if (hostJsonPath is null || !File.Exists(hostJsonPath))
        {
            return options;
        }

        using var document = JsonDocument.Parse(File.ReadAllText(hostJsonPath), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        if (!document.RootElement.TryGetProperty("extensions", out var extensions) || !extensions.TryGetProperty("queues", out var queues))
        {
            return options;
        }

        foreach (var property in queues.EnumerateObject())
        {
            switch (property.Name.ToLowerInvariant())
            {
                case "batchsize": options.BatchSize = Math.Clamp(property.Value.GetInt32(), 1, 32); break;
                case "newbatchthreshold": options.NewBatchThreshold = Math.Max(0, property.Value.GetInt32()); break;
                case "maxdequeuecount": options.MaxDequeueCount = Math.Max(1, property.Value.GetInt32()); break;
                case "visibilitytimeout": options.VisibilityTimeout = TimeSpan.Parse(property.Value.GetString()!, CultureInfo.InvariantCulture); break;
                case "maxpollinginterval": options.MaxPollingInterval = TimeSpan.Parse(property.Value.GetString()!, CultureInfo.InvariantCulture); break;
                default: break;
            }
        }

        return options;
    }
}
