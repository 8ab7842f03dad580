using BackupRelay;
using BackupRelay.Hosting;
using BackupRelay.Host;
using BackupRelay.Http;

// One executable, two hosts. Under Azure Functions (FUNCTIONS_CUSTOMHANDLER_PORT set) it is the
// custom handler answering POST /{FunctionName}; anywhere else it is the standalone host, with its
// own timer and queue listeners over the same storage queues.
var customHandlerPort = Environment.GetEnvironmentVariable("FUNCTIONS_CUSTOMHANDLER_PORT");
var appRoot = Environment.GetEnvironmentVariable("FUNCTIONS_APP_ROOT_PATH") ?? Directory.GetCurrentDirectory();
var builder = WebApplication.CreateSlimBuilder(args);
var settingsFile = args.SkipWhile(a => a != "--settings").Skip(1).FirstOrDefault();
if (settingsFile is not null)
{
    builder.Configuration.AddInMemoryCollection(LocalSettings.Read(settingsFile));
    builder.Configuration.AddEnvironmentVariables();
}

builder.Services.AddBackupRelay(builder.Configuration);
if (customHandlerPort is not null)
{
    builder.WebHost.UseUrls($"http://127.0.0.1:{customHandlerPort}");
}
else
{
    builder.Services.AddBackupRelayStandalone(builder.Configuration, appRoot);
}

var app = builder.Build();
if (customHandlerPort is not null)
{
    // authLevel keys are checked by the Functions host before it forwards a request.
    app.MapCustomHandler();
    app.MapBackupRelayApi(checkFunctionKeys: false);
}
else
{
    app.MapGet("/", () => "BackupRelay standalone host");
    app.MapBackupRelayApi(checkFunctionKeys: true);
}

return await BackupRelayApplication.RunAsync(app, builder.Configuration);
