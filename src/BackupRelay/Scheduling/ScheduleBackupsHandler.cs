using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using BackupRelay.Configuration;
using BackupRelay.Messaging;
using BackupRelay.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NCrontab;

namespace BackupRelay.Scheduling;

/// <summary>
/// The timer: one start message per configured graph, with a run id derived from (graph, scheduled
/// occurrence), so a doubled or past-due tick starts nothing twice.
/// </summary>
public sealed partial class ScheduleBackupsHandler(WorkQueues queues, IOptions<BackupOptions> options, TimeProvider time,
    ILogger<ScheduleBackupsHandler> logger)
{
    public async Task<IReadOnlyList<string>> HandleAsync(DateTimeOffset? tickTime = null, CancellationToken cancellationToken = default)
    {
        var settings = options.Value;
        var occurrence = Occurrence(settings.Schedule, tickTime ?? time.GetUtcNow());
        var runIds = new List<string>();

        // The tick is its own trace; each run it starts is another, linked to it.
        var caller = Activity.Current;
        Activity.Current = null;
        var tick = BackupRelayTelemetry.Source.StartActivity("schedule tick");
        tick?.SetTag("backuprelay.occurrence", occurrence.ToString("O", CultureInfo.InvariantCulture));
        try
        {
            foreach (var graph in settings.Graphs)
            {
                var runId = RunId(graph.GraphId, occurrence);
                var previous = Activity.Current;
                var run = BackupRelayTelemetry.StartRun(runId, "backup", graph.GraphId);
                try
                {
                    await queues.SendStartAsync(new StartBackupMessage(MessageParser.CurrentVersion, runId, graph.GraphId, "schedule", occurrence, Guid.NewGuid().ToString("N")),
                        settings.StartInterval * runIds.Count, cancellationToken);
                }
                finally
                {
                    BackupRelayTelemetry.EndRun(run, previous);
                }

                runIds.Add(runId);
            }
        }
        finally
        {
            tick?.Dispose();
            Activity.Current = caller;
        }

        Log.Scheduled(logger, runIds.Count, occurrence);
        return runIds;
    }

    /// <summary>The schedule's latest occurrence at or before <paramref name="now"/> (a tick may fire a little late, or early).</summary>
    public static DateTimeOffset Occurrence(string schedule, DateTimeOffset now)
    {
        var cron = Parse(schedule);
        var end = now.UtcDateTime.AddSeconds(1);
        var latest = cron.GetNextOccurrences(end.AddDays(-2), end).LastOrDefault();
        var utc = latest == default ? now.UtcDateTime : latest;
        return new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc));
    }

    /// <summary>NCRONTAB with six fields (seconds first) or five, as the Functions timer trigger accepts.</summary>
    public static CrontabSchedule Parse(string schedule) =>
        CrontabSchedule.Parse(schedule, new CrontabSchedule.ParseOptions { IncludingSeconds = schedule.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 6 });

    public static string RunId(string graphId, DateTimeOffset occurrence) =>
        $"sch-{occurrence.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(graphId)))[..12]}";

    private static partial class Log
    {
        [LoggerMessage(40, LogLevel.Information, "Scheduled {Count} backups for the occurrence {Occurrence:o}")]
        public static partial void Scheduled(ILogger logger, int count, DateTimeOffset occurrence);
    }
}
