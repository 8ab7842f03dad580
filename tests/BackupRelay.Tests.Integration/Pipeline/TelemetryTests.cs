using System.Diagnostics;
using System.Text;
using Azure.Storage;
using Azure.Storage.Sas;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Runs;
using BackupRelay.Storage;
using BackupRelay.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// What operators see, read from OpenTelemetry's in-memory exporters: a run is one trace across its
/// queue hops with a span per step and the run's ids; the metrics count runs, bytes, Huawei Cloud calls
/// and parked messages; and nothing exported carries a link's query, a SAS, a key or a password.
/// Span and meter listeners are process-wide: these tests run alone, so what the in-memory exporters
/// hold is this test's only.
/// </summary>
[Collection(SerialCollection.Name)]
public abstract class TelemetryTests : PipelineHarness
{
    private readonly List<Activity> _spans = [];
    private readonly List<MetricSnapshot> _metrics = [];
    private readonly List<LogRecord> _logs = [];
    private string _sas = "";

    protected override void ConfigureServices(IServiceCollection services)
    {
        services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(_spans));
        services.ConfigureOpenTelemetryMeterProvider(m => m.AddInMemoryExporter(_metrics));
        services.ConfigureOpenTelemetryLoggerProvider(l => l.AddInMemoryExporter(_logs));
    }

    protected override Dictionary<string, string?> ExtraSettings()
    {
        // A SAS destination: every blob request carries a signature the spans must not.
        var sas = new AccountSasBuilder(AccountSasPermissions.All, DateTimeOffset.UtcNow.AddHours(2), AccountSasServices.Blobs, AccountSasResourceTypes.All)
            .ToSasQueryParameters(new StorageSharedKeyCredential(StorageConnection.DevelopmentAccountName, StorageConnection.DevelopmentAccountKey));
        _sas = sas.Signature;
        return new()
        {
            ["Destination"] = $"BlobEndpoint=http://127.0.0.1:{Azurite.BlobPort}/devstoreaccount1;SharedAccessSignature={sas}",
            ["Http:HealthCacheDuration"] = "00:00:00",
        };
    }

    private void Flush()
    {
        Services.GetRequiredService<TracerProvider>().ForceFlush();
        Services.GetRequiredService<MeterProvider>().ForceFlush();
        Services.GetRequiredService<LoggerProvider>().ForceFlush();
    }

    private List<Activity> Spans()
    {
        lock (_spans)
        {
            return [.. _spans];
        }
    }

    /// <summary>The newest export of each metric (cumulative: it holds every measurement so far).</summary>
    private List<MetricSnapshot> Latest()
    {
        lock (_metrics)
        {
            return [.. _metrics.GroupBy(m => m.Name).Select(g => g.Last())];
        }
    }

    private double Sum(string metric, params (string Key, object Value)[] tags)
    {
        double total = 0;
        foreach (var m in Latest().Where(m => m.Name == metric))
        {
            foreach (var point in m.MetricPoints)
            {
                var have = new Dictionary<string, object?>();
                foreach (var tag in point.Tags)
                {
                    have[tag.Key] = tag.Value;
                }

                if (tags.All(t => have.TryGetValue(t.Key, out var v) && Equals(v?.ToString(), t.Value.ToString())))
                {
                    total += m.MetricType switch
                    {
                        MetricType.LongSum => point.GetSumLong(),
                        MetricType.DoubleSum => point.GetSumDouble(),
                        MetricType.LongGauge => point.GetGaugeLastValueLong(),
                        MetricType.DoubleGauge => point.GetGaugeLastValueDouble(),
                        MetricType.Histogram => point.GetHistogramCount(),
                        _ => 0,
                    };
                }
            }
        }

        return total;
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

        await Task.Delay(300);
        Flush();
        var spans = Spans();

        // One trace per run, spanning every hop.
        var ofA = spans.Where(s => s.Source.Name == BackupRelayTelemetry.Name && Equals(s.GetTagItem(BackupRelayTelemetry.RunId), runA.Id)).ToList();
        var traceA = Assert.Single(ofA.Select(s => s.TraceId).Distinct());
        Assert.Equal(runA.TraceId, traceA.ToHexString());
        var inTraceA = spans.Where(s => s.TraceId == traceA).ToList();
        Assert.Contains(inTraceA, s => s.DisplayName == "run backup" && s.ParentSpanId == default);
        Assert.Contains(inTraceA, s => s.DisplayName == "StartBackup" && Equals(s.GetTagItem(BackupRelayTelemetry.GraphId), GraphA));
        Assert.Contains(inTraceA, s => s.DisplayName == "PollBackupJob" && Equals(s.GetTagItem(BackupRelayTelemetry.JobId), runA.JobId)
            && Equals(s.GetTagItem(BackupRelayTelemetry.GraphId), GraphA));
        foreach (var file in runA.Files)
        {
            Assert.Contains(inTraceA, s => s.DisplayName == "CopyBackupFile" && Equals(s.GetTagItem(BackupRelayTelemetry.File), file.Name)
                && Equals(s.GetTagItem(BackupRelayTelemetry.BackupId), runA.BackupId));
        }

        Assert.Contains(inTraceA, s => s.DisplayName == "manifest");
        Assert.Contains(inTraceA, s => s.Kind == ActivityKind.Client && (s.GetTagItem("url.full") as string ?? "").Contains("/graphs/" + GraphA, StringComparison.Ordinal));
        Assert.Contains(inTraceA, s => s.Kind == ActivityKind.Client && (s.GetTagItem("url.full") as string ?? "").Contains("/obs/", StringComparison.Ordinal));
        Assert.NotEqual(traceA.ToHexString(), runB.TraceId);

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
        var deadline = DateTime.UtcNow.AddSeconds(20);
        do
        {
            await Task.Delay(200);
            Flush();
        }
        while (DateTime.UtcNow < deadline && Sum("backuprelay.messages.parked", ("messaging.destination.name", "backup-copy")) < 1);

        Assert.Equal(1, Sum("backuprelay.runs.finished", (BackupRelayTelemetry.GraphId, GraphA), ("backuprelay.run.outcome", "Failed")));
        Assert.Equal(1, Sum("backuprelay.runs.finished", (BackupRelayTelemetry.GraphId, GraphB), ("backuprelay.run.outcome", "Succeeded")));
        Assert.Equal(1, Sum("backuprelay.messages.parked", ("messaging.destination.name", "backup-copy"), (BackupRelayTelemetry.Function, "CopyBackupFile")));
        Assert.Equal(1, Sum("backuprelay.huaweicloud.calls", ("backuprelay.huaweicloud.service", "ges"), ("backuprelay.outcome", "throttled"),
            ("http.response.status_code", 429), ("backuprelay.huaweicloud.operation", "GET /v2/{id}/graphs/{id}/jobs/{id}/status")));
        var failed = Spans().Where(s => s.DisplayName == "PollBackupJob" && Equals(s.GetTagItem(BackupRelayTelemetry.GraphId), GraphA)).ToList();
        Assert.NotEmpty(failed);
    }

    /// <summary>Everything an exporter would send: span names, tags, events and links; metric names and tags; log text and attributes.</summary>
    private string Dump(List<Activity> spans)
    {
        var text = new StringBuilder();
        foreach (var span in spans)
        {
            text.Append(span.DisplayName).Append(' ').Append(span.StatusDescription).Append('\n');
            foreach (var tag in span.TagObjects)
            {
                text.Append(tag.Key).Append('=').Append(tag.Value).Append('\n');
            }

            foreach (var e in span.Events)
            {
                text.Append(e.Name);
                foreach (var tag in e.Tags)
                {
                    text.Append(tag.Key).Append('=').Append(tag.Value).Append('\n');
                }
            }
        }

        foreach (var metric in Latest())
        {
            text.Append(metric.Name).Append('\n');
            foreach (var point in metric.MetricPoints)
            {
                foreach (var tag in point.Tags)
                {
                    text.Append(tag.Key).Append('=').Append(tag.Value).Append('\n');
                }
            }
        }

        lock (_logs)
        {
            foreach (var log in _logs)
            {
                text.Append(log.FormattedMessage).Append(log.Body).Append(log.Exception?.ToString()).Append('\n');
                foreach (var attribute in log.Attributes ?? [])
                {
                    text.Append(attribute.Key).Append('=').Append(attribute.Value).Append('\n');
                }
            }
        }

        Assert.True(text.Length > 1000, "nothing was exported");
        return text.ToString();
    }
}

public sealed class StandaloneTelemetryTests : TelemetryTests
{
    protected override bool UseCustomHandler => false;
}

public sealed class CustomHandlerTelemetryTests : TelemetryTests
{
    protected override bool UseCustomHandler => true;
}
