namespace BackupRelay.Runs;

/// <summary>
/// The run history's upkeep, run by the freshness monitor: notifications a crash kept from being queued are
/// queued, and records past the retention are deleted. Apart from <see cref="RunStore"/>, which only reads
/// and writes runs.
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
        var lastDay = cutoff.UtcDateTime.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);
        var deleted = 0;
        await foreach (var day in runs.Index.DaysAsync(cancellationToken))
        {
            if (string.CompareOrdinal(day, lastDay) > 0)
            {
                break;
            }

            await foreach (var entry in runs.Index.OfDayAsync(day, cancellationToken))
            {
                if (entry.CreatedAt >= cutoff || !entry.IsFinished || keep.Contains(entry.RunId))
                {
                    continue;
                }

                await runs.Container.GetBlobClient(RunStore.BlobName(entry.RunId)).DeleteIfExistsAsync(cancellationToken: cancellationToken);
                await runs.Index.DeleteAsync(entry, cancellationToken);
                deleted++;
            }
        }

        return deleted;
    }
}
