using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;
using BackupRelay.Freshness;
using BackupRelay.Runs;

namespace BackupRelay.Telemetry;

/// <summary>
/// The names BackupRelay emits under (docs/operations.md, "Telemetry", lists every span, attribute and metric):
/// one <see cref="ActivitySource"/> and one <see cref="Meter"/>, both called <see cref="Name"/>.
/// </summary>
public static class BackupRelayTelemetry
{
    /// <summary>Shared with the Huawei Cloud client's call counter, so one meter name holds every metric.</summary>
    public const string Name = HuaweiCloud.HuaweiCloudCallCounter.MeterName;

    public static readonly ActivitySource Source = new(Name, typeof(BackupRelayTelemetry).Assembly.GetName().Version?.ToString());

    // Span attributes.
    public const string RunId = "backuprelay.run.id";
    public const string RunKind = "backuprelay.run.kind";
    public const string GraphId = "backuprelay.graph.id";
    public const string BackupId = "backuprelay.backup.id";
    public const string JobId = "backuprelay.job.id";
    public const string File = "backuprelay.file";
    public const string Function = "backuprelay.function";
    public const string Delivery = "backuprelay.delivery";

    /// <summary>The W3C trace context a queue message carries, so a run is one trace across its hops.</summary>
    public const string TraceParentProperty = "traceparent";

    /// <summary>Adds the current trace context to a message about to be sent.</summary>
    public static void Inject(JsonObject message)
    {
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } current)
        {
            message[TraceParentProperty] = current.Id;
        }
    }

    /// <summary>The parent a received message names, if it carries a valid one.</summary>
    public static ActivityContext Extract(string? traceParent) =>
        traceParent is not null && ActivityContext.TryParse(traceParent, null, out var context) ? context : default;

    /// <summary>Tags the current span with what a run-scoped step knows of its run.</summary>
    public static void TagRun(RunRecord run)
    {
        if (Activity.Current is not { } activity)
        {
            return;
        }

        activity.SetTag(RunId, run.Id);
        activity.SetTag(RunKind, run.Kind.Name());
        activity.SetTag(GraphId, run.GraphId);
        if (run.BackupId is not null)
        {
            activity.SetTag(BackupId, run.BackupId);
        }

        if (run.JobId is not null)
        {
            activity.SetTag(JobId, run.JobId);
        }
    }

    /// <summary>
    /// Starts the span that roots one run's trace, detached from whatever is current (a timer tick
    /// fans out to many runs, each its own trace) and linked to it.
    /// </summary>
    public static Activity? StartRun(string runId, string kind, string graphId)
    {
        var caller = Activity.Current;
        Activity.Current = null;
        var links = caller is null ? null : new[] { new ActivityLink(caller.Context) };
        var activity = Source.StartActivity($"run {kind}", ActivityKind.Producer, default(ActivityContext), links: links);
        activity?.SetTag(RunId, runId);
        activity?.SetTag(RunKind, kind);
        activity?.SetTag(GraphId, graphId);
        if (activity is null)
        {
            Activity.Current = caller;
        }

        return activity;
    }

    /// <summary>Ends a run's root span and puts back what was current before it.</summary>
    public static void EndRun(Activity? run, Activity? previous)
    {
        run?.Dispose();
        Activity.Current = previous;
    }
}

/// <summary>
/// Every metric BackupRelay emits, on one meter from the app's <see cref="IMeterFactory"/>. Names and
/// units follow OpenTelemetry conventions (UCUM units, dotted lower-case names).
/// </summary>
public sealed class BackupRelayMetrics
{
    private readonly Counter<long> _runsStarted;
    private readonly Counter<long> _runsFinished;
    private readonly Histogram<double> _runDuration;
    private readonly Counter<long> _bytesCopied;
    private readonly Histogram<double> _throughput;
    private readonly Counter<long> _parked;
    private readonly Counter<long> _unreadable;
    private readonly Counter<long> _drills;

    public BackupRelayMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(BackupRelayTelemetry.Name);
        _runsStarted = meter.CreateCounter<long>("backuprelay.runs.started", "{run}", "Runs created, by kind, graph and trigger.");
        _runsFinished = meter.CreateCounter<long>("backuprelay.runs.finished", "{run}", "Runs that ended, by kind, graph and outcome (Succeeded, PartiallyFailed, Failed).");
        _runDuration = meter.CreateHistogram<double>("backuprelay.run.duration", "s", "Time from a run's creation to its end, by kind, graph and outcome.");
        _bytesCopied = meter.CreateCounter<long>("backuprelay.copy.bytes", "By", "Bytes copied to the destination (each slice once), by graph.");
        _throughput = meter.CreateHistogram<double>("backuprelay.copy.throughput", "By/s", "Throughput of each copy slice, by graph.");
        _parked = meter.CreateCounter<long>("backuprelay.messages.parked", "{message}", "Messages moved to a poison queue, by queue and function.");
        _drills = meter.CreateCounter<long>("backuprelay.drill.runs", "{run}", "Restore drills that ended, by graph and outcome (Succeeded: passed; Failed).");
        _unreadable = meter.CreateCounter<long>("backuprelay.runs.unreadable", "{record}", "Run records a listing could not read (each time it skipped one).");
    }

    /// <summary>
    /// The copy engine's buffer memory against its budget (<c>Copy__MemoryBudgetBytes</c>), shared by every
    /// copy and upload the instance runs at once (up to host.json's batchSize + newBatchThreshold per function).
    /// </summary>
    public static void AddBufferGauges(IMeterFactory meters, Copying.CopyBufferBudget budget)
    {
        var meter = meters.Create(BackupRelayTelemetry.Name);
        meter.CreateObservableGauge("backuprelay.copy.buffer.in_use", () => budget.InUseBytes, "By", "Copy buffer bytes held now.");
        meter.CreateObservableGauge("backuprelay.copy.buffer.peak", () => budget.PeakInUseBytes, "By", "The most copy buffer bytes held at once since start.");
        meter.CreateObservableGauge("backuprelay.copy.buffer.budget", () => budget.CapacityBytes, "By", "The copy buffer budget (Copy__MemoryBudgetBytes).");
    }

    /// <summary>
    /// The per-graph gauges, read from the run store through the shared, briefly cached graph statuses:
    /// a refresh starts when the cached one is old, and the newest known values are reported meanwhile.
    /// </summary>
    public static void AddGraphGauges(IMeterFactory meters, GraphStatusService graphs)
    {
        var meter = meters.Create(BackupRelayTelemetry.Name);
        meter.CreateObservableGauge("backuprelay.graph.last_verified_copy.time", () => Observe(graphs, s =>
            s.LastVerifiedCopy is { } copy ? copy.CompletedAt.ToUnixTimeSeconds() : null), "s",
            "Unix time of each configured graph's newest verified copy (absent for a graph that never had one).");
        meter.CreateObservableGauge("backuprelay.graph.restore_unproven", () => Observe(graphs, s =>
            s.Restore.State == Drills.RestoreProofState.NotScheduled ? null : s.RestoreUnproven ? 1 : 0), "{graph}",
            "1 when the graph's last restore drill failed or none passed within its threshold, else 0 (graphs with a drill schedule).");
        meter.CreateObservableGauge("backuprelay.graph.last_proven_restore.age", () => Observe(graphs, s =>
            s.Restore.LastProvenRestore is { } proven ? (graphs.Now - proven.At).TotalSeconds : null), "s",
            "Seconds since each drilled graph's last passed restore drill (absent for a graph that never passed one).");
        meter.CreateObservableGauge("backuprelay.graph.restore_estimate", () => Observe(graphs, s =>
            s.Restore.Estimate?.Total.TotalSeconds), "s",
            "Estimated seconds to restore each drilled graph's newest verified copy, from its last passed drill (absent without one).");
        meter.CreateObservableGauge("backuprelay.graph.restore_too_slow", () => Observe(graphs, s =>
            s.Restore.RestoreTarget is null ? null : s.RestoreTooSlow ? 1 : 0), "{graph}",
            "1 when the graph's last passed drill, or the estimated restore of its newest copy, exceeds its restore target, else 0 (graphs with a target).");
        meter.CreateObservableGauge("backuprelay.graph.unverified", () => Observe(graphs, s => s.UnverifiedCopy is null ? 0 : 1), "{graph}",
            "1 when the graph's newest copy is not verified (received-only) and no verified copy is newer, else 0.");
        meter.CreateObservableGauge("backuprelay.graph.stale", () => Observe(graphs, s => s.State == FreshnessState.Stale ? 1 : 0), "{graph}",
            "1 when the graph's newest verified copy is older than its freshness threshold (or it never had one for that long), else 0.");
    }

    private static IEnumerable<Measurement<double>> Observe(GraphStatusService graphs, Func<GraphStatus, double?> value)
    {
        _ = graphs.GetAsync().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        foreach (var status in graphs.Latest ?? [])
        {
            if (value(status) is { } v)
            {
                yield return new Measurement<double>(v, new KeyValuePair<string, object?>(BackupRelayTelemetry.GraphId, status.GraphId));
            }
        }
    }

    public void RunStarted(RunRecord run) =>
        _runsStarted.Add(1, Tag(BackupRelayTelemetry.RunKind, run.Kind.Name()), Tag(BackupRelayTelemetry.GraphId, run.GraphId), Tag("backuprelay.run.trigger", run.Trigger));

    public void RunFinished(RunRecord run)
    {
        var outcome = Tag("backuprelay.run.outcome", run.Status.ToString());
        if (run.Kind == Runs.RunKind.RestoreDrill)
        {
            _drills.Add(1, Tag(BackupRelayTelemetry.GraphId, run.GraphId), outcome);
        }

        _runsFinished.Add(1, Tag(BackupRelayTelemetry.RunKind, run.Kind.Name()), Tag(BackupRelayTelemetry.GraphId, run.GraphId), outcome);
        if (run.CompletedAt is { } end)
        {
            _runDuration.Record((end - run.CreatedAt).TotalSeconds, Tag(BackupRelayTelemetry.RunKind, run.Kind.Name()), Tag(BackupRelayTelemetry.GraphId, run.GraphId), outcome);
        }
    }

    public void SliceCopied(string graphId, long bytes, TimeSpan elapsed)
    {
        _bytesCopied.Add(bytes, Tag(BackupRelayTelemetry.GraphId, graphId));
        if (bytes > 0 && elapsed > TimeSpan.Zero)
        {
            _throughput.Record(bytes / elapsed.TotalSeconds, Tag(BackupRelayTelemetry.GraphId, graphId));
        }
    }

    /// <summary>A run record a listing could not read and skipped.</summary>
    public void UnreadableRun() => _unreadable.Add(1);

    public void Parked(string queue, string function) =>
        _parked.Add(1, Tag("messaging.destination.name", queue), Tag(BackupRelayTelemetry.Function, function));

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);
}
