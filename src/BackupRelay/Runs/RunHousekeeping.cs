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
    /// Fails every unfinished run created within <paramref name="lookback"/> whose record has not changed for longer
    /// than <paramref name="quiet"/> (<c>Backup__QuietRunLimit</c>): its messages are gone — parked by the runtime, or
    /// lost — so no handler will end it. The run fails at its step, naming why; its end is notified and any target
    /// graph it held is free again, as with any failure. Returns the runs it failed.
    /// </summary>
    public async Task<List<RunRecord>> FailQuietRunsAsync(DateTimeOffset now, TimeSpan quiet, TimeSpan lookback, CancellationToken cancellationToken = default)
    {
        await runs.EnsureIndexAsync(cancellationToken);
        var failed = new List<RunRecord>();
        await foreach (var entry in runs.Index.NewestFirstAsync(null, 1000, cancellationToken))
        {
            if (now - entry.CreatedAt > lookback)
            {
                break;
            }

            if (entry.IsFinished || await runs.ReadForListingAsync(entry, cancellationToken) is not { IsFinished: false } run || now - run.UpdatedAt <= quiet)
            {
                continue;
            }

            var stored = await runs.UpdateAsync(run.Id, r =>
            {
                if (r.IsFinished || now - r.UpdatedAt <= quiet)
                {
                    return false; // it moved meanwhile
                }

                r.Fail(now, r.Step, $"nothing happened to the run for {quiet:c} at step {r.Step.Name()} (last change {r.UpdatedAt:o}): " +
                    "the message that would carry it on is gone (parked in a poison queue, or lost), so it would never end (Backup__QuietRunLimit)");
                return true;
            }, cancellationToken);
            if (stored.IsFinished && stored.CompletedAt == now)
            {
                failed.Add(stored);
            }
        }

        return failed;
    }

    /// <summary>
    /// Deletes finished runs created before <paramref name="cutoff"/>, records and entries, a day at a time
    /// (unfinished ones stay: a run still going is not history; so does each graph's newest verified copy).
    /// Returns how many were deleted.
    /// </summary>
    public async Task<int> DeleteOlderThanAsync(DateTimeOffset cutoff, CancellationToken cancellationToken = default)
    {
        await runs.EnsureIndexAsync(cancellationToken);

        // Each graph's newest verified copy, and newest copy of any level, keep their records however old: a restore
        // checks a copy against the record of the run that made it.
        var keep = (await runs.Index.SummariesAsync(cancellationToken)).Values.SelectMany(s => new[] { s.VerifiedCopy?.RunId, s.LastCopy?.RunId })
            .OfType<string>().ToHashSet(StringComparer.Ordinal);
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
/// from being queued are queued (delivery is at least once) and runs gone quiet past <c>Backup__QuietRunLimit</c> are
/// failed (the whole history at start, then the last <see cref="QuietLookback"/>); at start and then once an hour,
/// run records older than <c>Backup__RunRetention</c> are deleted.
/// </summary>
public sealed partial class RunHousekeepingService(RunHousekeeping housekeeping, IOptions<BackupOptions> options, TimeProvider time,
    ILogger<RunHousekeepingService> logger) : Microsoft.Extensions.Hosting.BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    public static readonly TimeSpan RetentionInterval = TimeSpan.FromHours(1);

    /// <summary>How far back (by creation) each minute's sweep for quiet runs looks once the first, whole-history one is done.</summary>
    public static readonly TimeSpan QuietLookback = TimeSpan.FromDays(7);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        DateTimeOffset? retentionAt = null;
        var lookback = TimeSpan.MaxValue;
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

            try
            {
                var quiet = options.Value.QuietRunLimit;
                foreach (var run in await housekeeping.FailQuietRunsAsync(time.GetUtcNow(), quiet, lookback, stoppingToken))
                {
                    Log.QuietRunFailed(logger, run.Id, run.Errors[^1].Step, quiet);
                }

                lookback = QuietLookback;
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

        [LoggerMessage(121, LogLevel.Error, "Run {RunId} failed at step {Step}: nothing happened to it for {Quiet} (Backup__QuietRunLimit), its messages are gone")]
        public static partial void QuietRunFailed(ILogger logger, string runId, string step, TimeSpan quiet);

        [LoggerMessage(86, LogLevel.Warning, "Ended runs could not be swept (notifications, quiet runs): {Error}")]
        public static partial void SweepFailed(ILogger logger, string error);
    }
}
