using System.Globalization;
using System.Text;
using Azure.Storage;
using Azure.Storage.Sas;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Runs;
using BackupRelay.Storage;
using BackupRelay.Telemetry;
using BackupRelay.Tests.Integration.Otlp;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Trace.V1;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// What operators see, read from what the worker's OpenTelemetry exporter sent over OTLP: a run is one
/// trace across its queue hops with a span per step and the run's ids; the metrics count runs, bytes,
/// Huawei Cloud calls and parked messages; and nothing exported carries a link's query, a SAS, a key or
/// a password.
/// </summary>
public sealed class TelemetryTests : PipelineHarness
{
    private OtlpReceiver _otlp = null!;
    private string _sas = "";

    protected override async Task BeforeHostStartsAsync() => _otlp = await OtlpReceiver.StartAsync();

    protected override Dictionary<string, string?> ExtraSettings()
    {
        // A SAS destination: every blob request carries a signature the spans must not.
        var sas = new AccountSasBuilder(AccountSasPermissions.All, DateTimeOffset.UtcNow.AddHours(2), AccountSasServices.Blobs, AccountSasResourceTypes.All)
            .ToSasQueryParameters(new StorageSharedKeyCredential(Azurite.AccountName, StorageConnection.DevelopmentAccountKey));
        _sas = sas.Signature;
        var settings = _otlp.Settings();
        settings["Destination"] = $"BlobEndpoint={Azurite.BlobEndpoint};SharedAccessSignature={sas}";
        settings["Http:HealthCacheDuration"] = "00:00:00";
        return settings;
    }

    /// <summary>One exported span with the name of the instrumentation scope that made it.</summary>
    private sealed record ExportedSpan(string Scope, Span Span)
    {
        public string Name => Span.Name;
        public string TraceId => Convert.ToHexStringLower(Span.TraceId.ToByteArray());
        public bool IsRoot => Span.ParentSpanId.IsEmpty;

        public string? Tag(string key) => Span.Attributes.FirstOrDefault(a => a.Key == key) is { } attribute ? Text(attribute.Value) : null;
    }

    private List<ExportedSpan> Spans() =>
        [.. _otlp.Traces.SelectMany(t => t.ResourceSpans).SelectMany(r => r.ScopeSpans).SelectMany(s => s.Spans.Select(span => new ExportedSpan(s.Scope?.Name ?? "", span)))];

    private static string Text(AnyValue value) => value.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => value.StringValue,
        AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.DoubleValue => value.DoubleValue.ToString(CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        _ => value.ToString(),
    };

    /// <summary>The newest export of each metric (cumulative: it holds every measurement so far).</summary>
    private List<Metric> Latest()
    {
        var latest = new Dictionary<string, Metric>();
        foreach (var metric in _otlp.Metrics.SelectMany(m => m.ResourceMetrics).SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics))
        {
            latest[metric.Name] = metric;
        }

        return [.. latest.Values];
    }

    private double Sum(string metric, params (string Key, object Value)[] tags)
    {
        bool Matches(IEnumerable<KeyValue> attributes)
        {
            var have = attributes.ToDictionary(a => a.Key, a => Text(a.Value));
            return tags.All(t => have.TryGetValue(t.Key, out var v) && v == Convert.ToString(t.Value, CultureInfo.InvariantCulture));
        }

        double total = 0;
        foreach (var m in Latest().Where(m => m.Name == metric))
        {
            total += m.DataCase switch
            {
                Metric.DataOneofCase.Sum => m.Sum.DataPoints.Where(p => Matches(p.Attributes)).Sum(Value),
                Metric.DataOneofCase.Gauge => m.Gauge.DataPoints.Where(p => Matches(p.Attributes)).Sum(Value),
                Metric.DataOneofCase.Histogram => m.Histogram.DataPoints.Where(p => Matches(p.Attributes)).Sum(p => (double)p.Count),
                _ => 0,
            };
        }

        return total;

        static double Value(NumberDataPoint point) => point.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? point.AsInt : point.AsDouble;
    }

    /// <summary>Exports arrive every few hundred milliseconds: waits until what a test needs has come.</summary>
    private static async Task WaitUntilAsync(Func<bool> arrived, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!arrived())
        {
            Assert.True(DateTime.UtcNow < deadline, $"never exported: {what}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task A_run_is_one_trace_across_its_hops_its_metrics_add_up_and_nothing_exported_carries_a_secret()
    {
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        var runA = runs.Single(r => r.GraphId == GraphA);
        var runB = runs.Single(r => r.GraphId == GraphB);
        await AssertCopiedAsync(runA, "orders");

        // The API with the function key in the query: the key must not reach a span.
        using (var list = await Api.GetAsync($"/api/runs?code={FunctionKey}"))
        {
            Assert.True(list.IsSuccessStatusCode);
        }

        using (var graphs = await Api.GetAsync($"/api/graphs?code={FunctionKey}"))
        {
            Assert.True(graphs.IsSuccessStatusCode);
        }

        await WaitUntilAsync(() => Spans().Count(s => s.Name == "manifest") >= 2
            && Sum("backuprelay.runs.finished", (BackupRelayTelemetry.GraphId, GraphA)) >= 1
            && Sum("backuprelay.graph.last_verified_copy.time", (BackupRelayTelemetry.GraphId, GraphA)) > 0, "both runs' manifests and run A's metrics");
        await Task.Delay(1000); // the next exports: anything still in flight
        var spans = Spans();

        // One trace per run, spanning every hop.
        var ofA = spans.Where(s => s.Scope == BackupRelayTelemetry.Name && s.Tag(BackupRelayTelemetry.RunId) == runA.Id).ToList();
        var traceA = Assert.Single(ofA.Select(s => s.TraceId).Distinct());
        Assert.Equal(runA.TraceId, traceA);
        var inTraceA = spans.Where(s => s.TraceId == traceA).ToList();
        Assert.Contains(inTraceA, s => s.Name == "run backup" && s.IsRoot);
        Assert.Contains(inTraceA, s => s.Name == "StartBackup" && s.Tag(BackupRelayTelemetry.GraphId) == GraphA);
        Assert.Contains(inTraceA, s => s.Name == "PollBackupJob" && s.Tag(BackupRelayTelemetry.JobId) == runA.JobId
            && s.Tag(BackupRelayTelemetry.GraphId) == GraphA);
        foreach (var file in runA.Files)
        {
            Assert.Contains(inTraceA, s => s.Name == "CopyBackupFile" && s.Tag(BackupRelayTelemetry.File) == file.Name
                && s.Tag(BackupRelayTelemetry.BackupId) == runA.BackupId);
        }

        Assert.Contains(inTraceA, s => s.Name == "manifest");
        Assert.Contains(inTraceA, s => s.Span.Kind == Span.Types.SpanKind.Client && (s.Tag("url.full") ?? "").Contains("/graphs/" + GraphA, StringComparison.Ordinal));
        Assert.Contains(inTraceA, s => s.Span.Kind == Span.Types.SpanKind.Client && (s.Tag("url.full") ?? "").Contains("/obs/", StringComparison.Ordinal));
        Assert.NotEqual(traceA, runB.TraceId);

        // Metrics.
        Assert.Equal(1, Sum("backuprelay.runs.started", (BackupRelayTelemetry.GraphId, GraphA)));
        Assert.Equal(1, Sum("backuprelay.runs.finished", (BackupRelayTelemetry.GraphId, GraphA), ("backuprelay.run.outcome", "Succeeded")));
        Assert.Equal(1, Sum("backuprelay.run.duration", (BackupRelayTelemetry.GraphId, GraphA)));
        Assert.Equal(runA.Files.Sum(f => f.Size ?? 0), Sum("backuprelay.copy.bytes", (BackupRelayTelemetry.GraphId, GraphA)));
        Assert.True(Sum("backuprelay.huaweicloud.calls", ("backuprelay.huaweicloud.service", "ges"), ("backuprelay.outcome", "ok")) >= 4);
        Assert.Equal(runA.CompletedAt!.Value.ToUnixTimeSeconds(), Sum("backuprelay.graph.last_verified_copy.time", (BackupRelayTelemetry.GraphId, GraphA)));
        Assert.Equal(0, Sum("backuprelay.graph.stale", (BackupRelayTelemetry.GraphId, GraphA)));

        // Nothing exported carries a secret.
        var exported = Dump(spans);
        foreach (var secret in new[] { "Signature=", "AccessKeyId=", "sig=", _sas, Uri.EscapeDataString(_sas), DemoSeed.Password, FunctionKey,
            StorageConnection.DevelopmentAccountKey, "X-Auth-Token", "Expires=" })
        {
            Assert.DoesNotContain(secret, exported, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_failed_run_and_a_parked_message_are_counted()
    {
        State.Faults.Add(new FaultSpec { Method = "POST", Path = $"/v2/*/graphs/{GraphA}/backups", Kind = "failJob", Reason = "disk full" });
        State.Faults.Add(new FaultSpec { Method = "GET", Path = $"/v2/*/graphs/{GraphB}/jobs/*", Kind = "status", Status = 429, RetryAfterSeconds = 1 });
        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        Assert.Equal(RunStatus.Failed, runs.Single(r => r.GraphId == GraphA).Status);
        await Services.GetRequiredService<BackupRelay.Messaging.WorkQueues>().Queue(BackupRelay.Configuration.QueueNames.CopyBackupFile)
            .SendMessageAsync("""{"v":77,"runId":"r","file":"f"}""");
        await WaitUntilAsync(() => Sum("backuprelay.messages.parked", ("messaging.destination.name", "backup-copy")) >= 1
            && Sum("backuprelay.runs.finished", (BackupRelayTelemetry.GraphId, GraphB)) >= 1, "the parked message and both runs' ends");

        Assert.Equal(1, Sum("backuprelay.runs.finished", (BackupRelayTelemetry.GraphId, GraphA), ("backuprelay.run.outcome", "Failed")));
        Assert.Equal(1, Sum("backuprelay.runs.finished", (BackupRelayTelemetry.GraphId, GraphB), ("backuprelay.run.outcome", "Succeeded")));
        Assert.Equal(1, Sum("backuprelay.messages.parked", ("messaging.destination.name", "backup-copy"), (BackupRelayTelemetry.Function, "CopyBackupFile")));
        Assert.Equal(1, Sum("backuprelay.huaweicloud.calls", ("backuprelay.huaweicloud.service", "ges"), ("backuprelay.outcome", "throttled"),
            ("http.response.status_code", 429), ("backuprelay.huaweicloud.operation", "GET /v2/{id}/graphs/{id}/jobs/{id}/status")));
        var failed = Spans().Where(s => s.Name == "PollBackupJob" && s.Tag(BackupRelayTelemetry.GraphId) == GraphA).ToList();
        Assert.NotEmpty(failed);
    }

    /// <summary>Everything the exporter sent: resources, span names, status, attributes, events and links; metric names and attributes; log bodies and attributes.</summary>
    private string Dump(List<ExportedSpan> spans)
    {
        var text = new StringBuilder();
        void Attributes(IEnumerable<KeyValue> attributes)
        {
            foreach (var attribute in attributes)
            {
                text.Append(attribute.Key).Append('=').Append(Text(attribute.Value)).Append('\n');
            }
        }

        foreach (var resource in _otlp.Traces.SelectMany(t => t.ResourceSpans).Select(r => r.Resource)
            .Concat(_otlp.Metrics.SelectMany(m => m.ResourceMetrics).Select(r => r.Resource))
            .Concat(_otlp.Logs.SelectMany(l => l.ResourceLogs).Select(r => r.Resource)).OfType<OpenTelemetry.Proto.Resource.V1.Resource>())
        {
            Attributes(resource.Attributes);
        }

        foreach (var span in spans.Select(s => s.Span))
        {
            text.Append(span.Name).Append(' ').Append(span.Status?.Message).Append('\n');
            Attributes(span.Attributes);
            foreach (var e in span.Events)
            {
                text.Append(e.Name).Append('\n');
                Attributes(e.Attributes);
            }

            foreach (var link in span.Links)
            {
                Attributes(link.Attributes);
            }
        }

        foreach (var metric in Latest())
        {
            text.Append(metric.Name).Append('\n');
            IEnumerable<IEnumerable<KeyValue>> points = metric.DataCase switch
            {
                Metric.DataOneofCase.Sum => metric.Sum.DataPoints.Select(p => p.Attributes),
                Metric.DataOneofCase.Gauge => metric.Gauge.DataPoints.Select(p => p.Attributes),
                Metric.DataOneofCase.Histogram => metric.Histogram.DataPoints.Select(p => p.Attributes),
                _ => [],
            };
            foreach (var point in points)
            {
                Attributes(point);
            }
        }

        foreach (var log in _otlp.Logs.SelectMany(l => l.ResourceLogs).SelectMany(r => r.ScopeLogs).SelectMany(s => s.LogRecords))
        {
            text.Append(Text(log.Body ?? new AnyValue())).Append('\n');
            Attributes(log.Attributes);
        }

        Assert.True(text.Length > 1000, "nothing was exported");
        Assert.True(_otlp.Logs.Count > 0, "no logs were exported");
        return text.ToString();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _otlp.DisposeAsync();
    }
}
