using Microsoft.Azure.Functions.Worker.Grpc.Messages;

namespace BackupRelay.LocalHost;

/// <summary>How the local host runs the app. Everything has the Functions runtime's value unless a test shortens it.</summary>
public sealed class LocalHostOptions
{
    /// <summary>The published app: the folder with <c>functions.metadata</c>, <c>worker.config.json</c> and <c>host.json</c>.</summary>
    public required string AppDirectory { get; init; }

    /// <summary>App settings, given to the worker as environment variables and read by the triggers (connections, %schedule%).</summary>
    public Dictionary<string, string> Settings { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The HTTP port (0: any free one).</summary>
    public int HttpPort { get; init; } = 7071;

    /// <summary>The master key (opens every function, admin level included).</summary>
    public string? MasterKey { get; init; }

    /// <summary>Host keys: each opens every function-level function.</summary>
    public List<string> HostKeys { get; init; } = [];

    /// <summary>Function keys, by function name: each opens its own function.</summary>
    public Dictionary<string, string> FunctionKeys { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// How long a received message stays hidden while its invocation runs; renewed at half of it. The
    /// runtime uses 10 minutes; tests shorten it so a message held by a killed host comes back soon.
    /// </summary>
    public TimeSpan MessageVisibility { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The first wait on an empty queue; it doubles up to host.json's <c>maxPollingInterval</c>.</summary>
    public TimeSpan MinPollingInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Fire every timer once at start-up (<c>runOnStartup</c>, for the demo).</summary>
    public bool TimersRunOnStartup { get; init; }

    /// <summary>The host id naming the timer's lock and status blobs; instances with the same id share one timer.</summary>
    public string HostId { get; init; } = "backuprelay-local";

    /// <summary>How long the worker may take to connect and load its functions.</summary>
    public TimeSpan WorkerStartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// An app setting by name, <c>__</c> and <c>:</c> alike (<c>AzureFunctionsJobHost__functionTimeout</c> overrides
    /// host.json, as in the runtime; tests set fast timings so).
    /// </summary>
    public string? Setting(string name) =>
        Settings.TryGetValue(name, out var value) || Settings.TryGetValue(name.Replace("__", ":", StringComparison.Ordinal), out value) ? value : null;

    /// <summary>
    /// Fault injection for tests: asked with each answer the worker gives; true kills the worker and drops
    /// the answer, as if the worker died after the function's work and before its answer reached the host.
    /// </summary>
    public Func<string, InvocationRequest, InvocationResponse, bool>? KillWorkerBeforeAnswer { get; init; }
}
