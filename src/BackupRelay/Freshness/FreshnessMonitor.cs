using BackupRelay.Storage;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Freshness;

/// <summary>
/// Computes the graph statuses every minute on every instance, so staleness is noticed (logged, notified,
/// gauged) with nobody asking. It only reads: the history's upkeep is <see cref="Runs.RunHousekeepingService"/>.
/// </summary>
public sealed partial class FreshnessMonitor(GraphStatusService graphs, TimeProvider time, ILogger<FreshnessMonitor> logger)
    : Microsoft.Extensions.Hosting.BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await graphs.GetAsync().WaitAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.FreshnessFailed(logger, StorageErrors.Describe(ex));
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

    private static partial class Log
    {
        [LoggerMessage(81, LogLevel.Warning, "Graph freshness could not be computed: {Error}")]
        public static partial void FreshnessFailed(ILogger logger, string error);
    }
}
