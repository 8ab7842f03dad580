using System.Text.Json.Nodes;
using BackupRelay.LocalHost;

// The local Functions host (development and tests only): runs a published isolated-worker app the way
// `func start` does. Usage:
//   BackupRelay.LocalHost --app <published app folder> [--settings local.settings.json] [--port 7071]
//                         [--host-key KEY] [--master-key KEY] [--run-timers-on-startup]
//                         [--message-visibility hh:mm:ss]   (tests: short leases)
// host.json is the app folder's, overridden as in the runtime by AzureFunctionsJobHost__* settings (tests: fast timings).
// Settings: the file's Values, then environment variables (which win), go to the worker as environment variables.
var app = Arg("--app");
var settingsFile = Arg("--settings");
if (app is null || !File.Exists(Path.Combine(app, "functions.metadata")))
{
    Console.Error.WriteLine($"BackupRelay.LocalHost: --app must name a published Functions app folder (with functions.metadata); got '{app}'.");
    return 3;
}

var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
if (settingsFile is not null)
{
    if (!File.Exists(settingsFile))
    {
        Console.Error.WriteLine($"BackupRelay.LocalHost: the settings file {Path.GetFullPath(settingsFile)} does not exist.");
        return 3;
    }

    foreach (var (key, value) in JsonNode.Parse(File.ReadAllText(settingsFile), documentOptions: new() { CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true })?["Values"]?.AsObject() ?? [])
    {
        settings[key] = value?.ToString() ?? "";
    }
}

foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
{
    var name = (string)variable.Key;
    if (settings.ContainsKey(name) || name.Contains("__", StringComparison.Ordinal) || name.StartsWith("OTEL_", StringComparison.Ordinal)
        || name is "AzureWebJobsStorage" or "APPLICATIONINSIGHTS_CONNECTION_STRING" or "Destination")
    {
        settings[name] = (string)variable.Value!;
    }
}

var hostKey = Arg("--host-key") ?? Environment.GetEnvironmentVariable("LOCALHOST_HOST_KEY") ?? Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
// The master key opens admin-level functions (the poison replay) as well as the rest; none given: a random one nobody knows.
var masterKey = Arg("--master-key") ?? Environment.GetEnvironmentVariable("LOCALHOST_MASTER_KEY") ?? Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
var options = new LocalHostOptions
{
    AppDirectory = Path.GetFullPath(app),
    Settings = settings,
    HttpPort = int.Parse(Arg("--port") ?? "7071", System.Globalization.CultureInfo.InvariantCulture),
    HostKeys = [hostKey],
    MasterKey = masterKey,
    TimersRunOnStartup = args.Contains("--run-timers-on-startup"),
    MessageVisibility = Arg("--message-visibility") is { } visibility
        ? TimeSpan.Parse(visibility, System.Globalization.CultureInfo.InvariantCulture)
        : TimeSpan.FromMinutes(10),
};
using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information)
    .AddFilter("Microsoft", LogLevel.Warning).AddFilter("Grpc", LogLevel.Warning));
LocalFunctionsHost host;
try
{
    host = await LocalFunctionsHost.StartAsync(options, loggers);
}
catch (WorkerStartException ex)
{
    // The worker's own start-up report (one line per bad setting, exit code 3) was logged above as it came; it is
    // said once. Only a worker that said nothing gets its output repeated here.
    if (!ex.Output.Contains("cannot start", StringComparison.Ordinal))
    {
        await Console.Error.WriteLineAsync(ex.Output);
    }

    await Console.Error.WriteLineAsync($"BackupRelay.LocalHost: {ex.Message}");
    return ex.ExitCode > 0 ? ex.ExitCode.Value : 1;
}
catch (IOException ex) when (ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
{
    // One line, not the server's stack trace: the port is the newcomer's to change.
    await Console.Error.WriteLineAsync($"BackupRelay.LocalHost: port {options.HttpPort} is in use by another program: stop it, or pass --port <free port> (0: any free one).");
    return 4;
}

Console.WriteLine($"Functions ({host.Functions.Count}), HTTP at {host.HttpAddress} (host key in x-functions-key):");
foreach (var function in host.Functions.Values.OrderBy(f => f.Name, StringComparer.Ordinal))
{
    var where = function.TriggerType switch
    {
        "httpTrigger" => $"{string.Join(",", function.Trigger["methods"]?.AsArray().Select(m => m!.ToString().ToUpperInvariant()) ?? [])} {host.HttpAddress}{host.HostJson.RoutePrefix}/{function.Property("route")}",
        "queueTrigger" => $"queue {function.Property("queueName")}",
        "timerTrigger" => $"timer {function.Property("schedule")}",
        _ => function.TriggerType,
    };
    Console.WriteLine($"  {function.Name}: {where}");
}

// Ctrl+C or SIGTERM: stop the triggers, cancel what runs, let the worker exit (as the runtime shuts down).
var stop = new TaskCompletionSource();
using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Stop);
using var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Stop);
await stop.Task;
await host.DisposeAsync();
return 0;

void Stop(System.Runtime.InteropServices.PosixSignalContext context)
{
    context.Cancel = true;
    stop.TrySetResult();
}

string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
