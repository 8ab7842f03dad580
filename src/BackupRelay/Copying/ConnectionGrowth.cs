namespace BackupRelay.Copying;

/// <summary>
/// Parallel connections that grow while more pay, as AzCopy tunes its concurrency: the download's connections
/// (<see cref="SegmentedDownload"/>) and the upload's sends (<see cref="BlockPipeline.AdaptSendsAsync"/>). Each interval
/// (two after a step, the first for the new connections to open their requests and wait for their first bytes) the
/// rate of bytes moved is measured; a step adds half as many connections again, up to the most allowed, and the growth
/// stops for good once a step did not raise the rate by a tenth in two intervals in a row, or the caller declines a step (its own bound: the
/// hashes, the budget, what is left). Hand-written: no library tunes ranged transfers.
/// </summary>
internal static class ConnectionGrowth
{
    /// <param name="progress">Bytes moved so far.</param>
    /// <param name="intervalStarts">Told the timestamp each measured interval starts at (a caller's own measure begins there).</param>
    /// <param name="tryGrow">Adds <c>step</c> connections and returns true, or declines (measured over the interval from
    /// <c>from</c> to <c>to</c>), which stops the growth.</param>
    /// <param name="stopped">True once the transfer stopped (a failure): no more steps.</param>
    /// <returns>The connections reached, once the growth stopped or <paramref name="stop"/> was cancelled.</returns>
    public static async Task<int> RunAsync(int start, int most, TimeSpan interval, TimeProvider time, Func<long> progress,
        Action<long> intervalStarts, Func<(int Step, long From, long To), bool> tryGrow, Func<bool> stopped, CancellationToken stop)
    {
        var connections = start;
        double? rateBeforeStep = null;
        var (settle, judgedAgain) = (false, false);
        try
        {
            while (connections < most && !stopped())
            {
                if (settle)
                {
                    await Task.Delay(interval, time, stop);
                }

                var (lastBytes, from) = (progress(), time.GetTimestamp());
                intervalStarts(from);
                await Task.Delay(interval, time, stop);
                var (bytes, to) = (progress(), time.GetTimestamp());
                var rate = (bytes - lastBytes) / Math.Max(time.GetElapsedTime(from, to).TotalSeconds, 0.001);
                if (rateBeforeStep is { } before && rate < before * 1.1)
                {
                    // One interval can stall (a request waiting for its first bytes, a pause): a step is judged again over
                    // the next interval before the growth stops.
                    if (judgedAgain)
                    {
                        break;
                    }

                    (settle, judgedAgain) = (false, true);
                    continue;
                }

                var step = Math.Min(Math.Max(connections / 2, 1), most - connections);
                if (!tryGrow((step, from, to)))
                {
                    break;
                }

                connections += step;
                (rateBeforeStep, settle, judgedAgain) = (rate, true, false);
            }
        }
        catch (OperationCanceledException)
        {
            // The transfer ended.
        }

        return connections;
    }
}
