using BackupRelay;
using BackupRelay.Functions.Hosting;
using BackupRelay.Hosting;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// The Azure Functions app (isolated worker): [Function] adapters over the BackupRelay library. The
// Functions runtime owns queue receipt, retries, poison queues, the timer's singleton and keys.
var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.UseMiddleware<InvocationLogScope>();
builder.UseWhen<HttpProblemMiddleware>(context => context.FunctionDefinition.InputBindings.Values.Any(b => b.Type == "httpTrigger"));
builder.Services.AddBackupRelay(builder.Configuration, telemetry => telemetry.UseFunctionsWorkerDefaults());
builder.Services.AddSingleton<BackupRelay.Http.ApiExceptionHandler>();

var app = builder.Build();
return await BackupRelayApplication.RunAsync(app, builder.Configuration);
