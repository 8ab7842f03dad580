using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Logs.V1;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Collector.Trace.V1;

namespace BackupRelay.Tests.Integration.Otlp;

/// <summary>
/// An OTLP/HTTP (protobuf) endpoint, as a collector exposes one: keeps every export it receives, so a
/// test reads exactly what the worker's OpenTelemetry exporter sent over the wire. Hand-written because
/// no collector is served as a package; it only decodes the three export requests.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<ExportTraceServiceRequest> _traces = [];
    private readonly List<ExportMetricsServiceRequest> _metrics = [];
    private readonly List<ExportLogsServiceRequest> _logs = [];

    private OtlpReceiver(WebApplication app) => _app = app;

    /// <summary>The base address for <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
    public Uri Endpoint { get; private set; } = null!;

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/traces", (HttpContext context) => receiver.ReceiveAsync(context, ExportTraceServiceRequest.Parser, receiver._traces, new ExportTraceServiceResponse()));
        app.MapPost("/v1/metrics", (HttpContext context) => receiver.ReceiveAsync(context, ExportMetricsServiceRequest.Parser, receiver._metrics, new ExportMetricsServiceResponse()));
        app.MapPost("/v1/logs", (HttpContext context) => receiver.ReceiveAsync(context, ExportLogsServiceRequest.Parser, receiver._logs, new ExportLogsServiceResponse()));
        await app.StartAsync();
        receiver.Endpoint = new Uri(app.Urls.First());
        return receiver;
    }

    /// <summary>Settings that point the worker's exporter here, exporting every fraction of a second.</summary>
    public Dictionary<string, string?> Settings() => new()
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Endpoint.ToString().TrimEnd('/'),
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        ["OTEL_BLRP_SCHEDULE_DELAY"] = "200",
        ["OTEL_METRIC_EXPORT_INTERVAL"] = "300",
    };

    public IReadOnlyList<ExportTraceServiceRequest> Traces => Snapshot(_traces);

    public IReadOnlyList<ExportMetricsServiceRequest> Metrics => Snapshot(_metrics);

    public IReadOnlyList<ExportLogsServiceRequest> Logs => Snapshot(_logs);

    private static List<T> Snapshot<T>(List<T> list)
    {
        lock (list)
        {
            return [.. list];
        }
    }

    private async Task ReceiveAsync<T>(HttpContext context, MessageParser<T> parser, List<T> into, IMessage response)
        where T : IMessage<T>
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        var request = parser.ParseFrom(body.ToArray());
        lock (into)
        {
            into.Add(request);
        }

        context.Response.ContentType = "application/x-protobuf";
        await context.Response.Body.WriteAsync(response.ToByteArray());
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
