using BackupRelay.Copying;

namespace BackupRelay.Tests.Integration.Copying;

/// <summary>
/// A download's connections grow while more pay (<c>Copy__MaxDownloadConnections</c>): on a link whose connections
/// are each capped, every step raises the rate, so the download grows; with no budget to spare, it does not.
/// </summary>
public sealed class AdaptiveConnectionsTests : CopyHarness
{
    private const int PerConnection = 1024 * 1024;

    [Fact]
    public async Task On_a_link_capped_per_connection_the_download_grows_while_each_step_pays()
    {
        State.Settings.ObsBytesPerSecondPerConnection = PerConnection;
        State.Settings.ObsTimeToFirstByteMs = 100;
        var file = await BackupFileAsync(Block * 256L);
        var destination = await DestinationAsync(DestinationKind.Local);
        var result = await Copier(o => (o.DownloadConnections, o.MaxDownloadConnections, o.AdaptInterval) = (2, 8, TimeSpan.FromMilliseconds(300)))
            .CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);

        // 2 → 3 → 4 → 6 → 8: each step adds half as many again, and on this link each raises the rate by a third or more.
        Assert.InRange(result.Statistics.Connections, 6, 8);
    }

    [Fact]
    public async Task With_no_budget_to_spare_the_download_keeps_the_connections_it_started_with()
    {
        State.Settings.ObsBytesPerSecondPerConnection = PerConnection;
        var file = await BackupFileAsync(Block * 32L);
        var destination = await DestinationAsync(DestinationKind.Local);

        // Exactly the two connections' chunks and the hash ring's.
        var budget = new CopyBufferBudget((2 + SegmentedDownload.HashRing) * (long)Block);
        var result = await Copier(o => (o.DownloadConnections, o.MaxDownloadConnections, o.AdaptInterval) = (2, 8, TimeSpan.FromMilliseconds(200)), budget)
            .CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(2, result.Statistics.Connections);
        Assert.True(budget.PeakInUseBytes <= budget.CapacityBytes, $"peak {budget.PeakInUseBytes}");
    }
}
