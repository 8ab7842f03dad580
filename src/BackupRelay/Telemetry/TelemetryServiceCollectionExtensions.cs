using System.Diagnostics;
using Azure.Core;
using Azure.Identity;
using Azure.Monitor.OpenTelemetry.Exporter;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace BackupRelay.Telemetry;

/// <summary>
/// OpenTelemetry for the app: BackupRelay's own spans and metrics, HTTP client spans (GES, CSE,
/// IAM, OBS, storage) and HTTP server spans, and logs. Exporters are chosen by configuration: Azure
/// Monitor when <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is set (Entra ID through the managed
/// identity named by <c>APPLICATIONINSIGHTS_AUTHENTICATION_STRING</c>), OTLP when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, none otherwise. Exporters send in the background: none
/// is on the start-up path.
/// </summary>
public static class TelemetryServiceCollectionExtensions
{
    public const string AppInsightsSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";
    public const string AppInsightsAuthSetting = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";
    public const string OtlpSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";

    public static IServiceCollection AddBackupRelayTelemetry(this IServiceCollection services, IConfiguration configuration,
        Action<IOpenTelemetryBuilder>? configure = null)
    {
        services.AddSingleton<BackupRelayMetrics>();
        var builder = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("backuprelay", serviceInstanceId: Environment.MachineName))
            .WithTracing(tracing => tracing
                .AddSource(BackupRelayTelemetry.Name)
                .AddHttpClientInstrumentation(o =>
                {
                    // Download links and SAS tokens are secrets: a span keeps scheme, host and path only.
                    o.EnrichWithHttpRequestMessage = (activity, request) => Redact(activity, request.RequestUri);
                    o.EnrichWithHttpResponseMessage = (activity, response) => Redact(activity, response.RequestMessage?.RequestUri);
                })
                .AddAspNetCoreInstrumentation(o =>
                {
                    // The host's invocation calls and health probes are noise; the function key may ride in ?code=.
                    o.Filter = context => context.Request.Path.StartsWithSegments("/api", StringComparison.OrdinalIgnoreCase)
                        && !context.Request.Path.StartsWithSegments("/api/health", StringComparison.OrdinalIgnoreCase);
                    o.EnrichWithHttpRequest = (activity, request) => activity.SetTag("url.query", null);
                }))
            .WithMetrics(metrics => metrics.AddMeter(BackupRelayTelemetry.Name))
            .WithLogging();

        var appInsights = configuration[AppInsightsSetting];
        if (!string.IsNullOrWhiteSpace(appInsights))
        {
            var credential = Credential(configuration[AppInsightsAuthSetting]);
            void Options(AzureMonitorExporterOptions o) => o.ConnectionString = appInsights;
            builder.WithTracing(t => t.AddAzureMonitorTraceExporter(Options, credential));
            builder.WithMetrics(m => m.AddAzureMonitorMetricExporter(Options, credential));
            builder.WithLogging(l => l.AddAzureMonitorLogExporter(Options, credential));
        }

        if (!string.IsNullOrWhiteSpace(configuration[OtlpSetting]))
        {
            // Reads OTEL_EXPORTER_OTLP_* (endpoint, protocol, headers) as every OpenTelemetry SDK does.
            builder.UseOtlpExporter();
        }

        configure?.Invoke(builder);
        return services;
    }

    /// <summary><c>Authorization=AAD[;ClientId=...]</c>: the managed identity; anything else: the connection string's own key.</summary>
    internal static TokenCredential? Credential(string? authentication)
    {
        if (string.IsNullOrWhiteSpace(authentication))
        {
            return null;
        }

        var parts = authentication.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1], StringComparer.OrdinalIgnoreCase);
        if (!parts.TryGetValue("Authorization", out var kind) || !string.Equals(kind, "AAD", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return parts.TryGetValue("ClientId", out var clientId) && !string.IsNullOrEmpty(clientId)
            ? new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(clientId))
            : new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned);
    }

    /// <summary>Scheme, host and path: a URL's query (signatures, SAS, keys) never reaches a span.</summary>
    public static string? Redacted(Uri? uri) =>
        uri is null ? null : uri.IsAbsoluteUri ? uri.GetLeftPart(UriPartial.Path) : uri.OriginalString.Split('?', 2)[0];

    private static void Redact(Activity activity, Uri? uri)
    {
        if (Redacted(uri) is { } url)
        {
            activity.SetTag("url.full", url);
            activity.SetTag("url.query", null);
            activity.SetTag("http.url", null);
        }
    }
}
