using BackupRelay.Configuration;
using BackupRelay.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Runs;

/// <summary>
/// The run history's upkeep, run each minute by <see cref="RunHousekeepingService"/>: notifications a crash kept
/// from being queued are queued, and records past the retention are deleted. Apart from <see cref="RunStore"/>,
/// which only reads and writes runs.
/// </summary>
public sealed class RunHousekeeping(RunStore runs)
{
    /// <summary>
    /// Ended runs whose notification was never queued (a crash in between), ended between
    /// <paramref name="grace"/> and a day ago (older ones are history, not news). Reads the index back to
    /// runs created two days ago, and only the records of runs it finds unnotified.
    /// </summary>
    public async Task SweepNotificationsAsync(DateTimeOffset now, TimeSpan grace, CancellationToken cancellationToken = default)
    {
        if (!runs.Notifies)
        {
            return;
        }

        await runs.EnsureIndexAsync(cancellationToken);
        await foreach (var entry in runs.Index.NewestFirstAsync(null, 1000, cancellationToken))
        {
            if (now - entry.CreatedAt > TimeSpan.FromDays(2))
            {
                break;
            }

            if (entry.IsFinished && !entry.Notified && entry.CompletedAt is { } at && now - at > grace && now - at < TimeSpan.FromDays(1)
                && await runs.ReadForListingAsync(entry, cancellationToken) is { } run)
            {
                await runs.NotifyEndedAsync(run);
            }
        }
    }

    /// <summary>
    /// Deletes finished runs created before <paramref name="cutoff"/>, records and entries, a day at a time
    /// (unfinished ones stay: a run still going is not history; so does each graph's newest verified copy).
    /// Returns how many were deleted.
    /// </summary>
    public async Task<int> DeleteOlderThanAsync(DateTimeOffset cutoff, CancellationToken cancellationToken = default)
    {
        await runs.EnsureIndexAsync(cancellationToken);

        // Each graph's newest verified copy keeps its record however old: a restore checks a copy against it.
        var keep = (await runs.Index.SummariesAsync(cancellationToken)).Values.Select(s => s.VerifiedCopy?.RunId).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var lastDay = RunIndex.Day(cutoff);
        var deleted = 0;
        foreach (var day in await runs.Index.DaysWithRunsAsync(cancellationToken))
        {
            if (string.CompareOrdinal(day, lastDay) > 0)
            {
                break;
            }

            var kept = 0;
            await foreach (var entry in runs.Index.OfDayAsync(day, cancellationToken))
            {
                if (entry.CreatedAt >= cutoff || !entry.IsFinished || keep.Contains(entry.RunId))
                {
                    kept++;
                    continue;
                }

                await runs.Container.GetBlobClient(RunStore.BlobName(entry.RunId)).DeleteIfExistsAsync(cancellationToken: cancellationToken);
                await runs.Index.DeleteAsync(entry, cancellationToken);
                deleted++;
            }

            if (kept == 0)
            {
                await runs.Index.UnmarkDayAsync(day, cancellationToken);
            }
        }

        return deleted;
    }
}

/// <summary>
/// Runs <see cref="RunHousekeeping"/> on every instance: each minute, ended runs whose notification a crash kept
/// from being queued are queued (delivery is at least once); at start and then once an hour, run records older
/// than <c>Backup__RunRetention</c> are deleted.
/// </summary>
public sealed partial class RunHousekeepingService(RunHousekeeping housekeeping, IOptions<BackupOptions> options, TimeProvider time,
    ILogger<RunHousekeepingService> logger) : Microsoft.Extensions.Hosting.BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    public static readonly TimeSpan RetentionInterval = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        DateTimeOffset? retentionAt = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await housekeeping.SweepNotificationsAsync(time.GetUtcNow(), TimeSpan.FromMinutes(2), stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.SweepFailed(logger, StorageErrors.Describe(ex));
            }

            var retention = options.Value.RunRetention;
            if (retention > TimeSpan.Zero && (retentionAt is null || time.GetUtcNow() - retentionAt >= RetentionInterval))
            {
                retentionAt = time.GetUtcNow();
                await DeleteOldRunsAsync(retentionAt.Value - retention, retention, stoppingToken);
            }

            try
            {
                await Task.Delay(Interval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task DeleteOldRunsAsync(DateTimeOffset before, TimeSpan retention, CancellationToken cancellationToken)
    {
        try
        {
            var deleted = await housekeeping.DeleteOlderThanAsync(before, cancellationToken);
            if (deleted > 0)
            {
                Log.RunsDeleted(logger, deleted, retention.TotalDays);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.RetentionFailed(logger, StorageErrors.Describe(ex));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(82, LogLevel.Information, "Deleted {Count} finished run records older than {Days} days (Backup__RunRetention)")]
        public static partial void RunsDeleted(ILogger logger, int count, double days);

        [LoggerMessage(83, LogLevel.Warning, "Old run records could not be deleted: {Error}; trying again in an hour")]
        public static partial void RetentionFailed(ILogger logger, string error);

        [LoggerMessage(86, LogLevel.Warning, "Notifications of ended runs could not be swept: {Error}")]
        public static partial void SweepFailed(ILogger logger, string error);
    }
}
