using BackupRelay.Copying;
using BackupRelay.Tests.Integration.Pipeline;

namespace BackupRelay.Tests.Integration.Copying;

/// <summary>
/// What a copy really allocates, measured by the runtime (<see cref="GC.GetTotalAllocatedBytes(bool)"/>), not
/// by the budget's own bookkeeping: a copier that took its block buffers anywhere but the budget's pool would
/// allocate the file's size again. Alone in the process (the serial collection), so other tests' allocations
/// do not count; the emulator serving the file runs in this process too and streams from a pooled buffer.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class CopyMemoryTests : CopyHarness
{
    private const long FileSize = 48L << 20;
    private const int BlockSize = 1 << 20;

    /// <summary>An Azurite of its own: the shared one holds what every other test wrote, and slows with it.</summary>
    protected override bool OwnAzurite => true;

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task A_copy_allocates_a_small_fraction_of_the_file_its_block_buffers_come_from_the_budget(DestinationKind kind)
    {
        var budget = new CopyBufferBudget(8L * BlockSize);
        void Configure(CopyOptions o) => (o.BlockSizeBytes, o.DownloadConnections, o.MaxConcurrency) = (BlockSize, 8, 4);

        // Warm up: JIT, connection pools, the budget's pool filled once.
        var warm = await BackupFileAsync(FileSize / 4);
        var warmDestination = await DestinationAsync(kind);
        await AssertCopiedAsync(warmDestination, warm, await Copier(Configure, budget).CopyAsync(warmDestination, Request(warm)));

        var file = await BackupFileAsync(FileSize);
        var destination = await DestinationAsync(kind);
        var copier = Copier(Configure, budget);
        GC.Collect();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var result = await copier.CopyAsync(destination, Request(file));
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        await AssertCopiedAsync(destination, file, result);
        Assert.True(budget.PeakInUseBytes <= budget.CapacityBytes);

        // Measured at about 3 % of the file (HTTP and SDK bookkeeping); one buffer per block outside the pool would be 100 %.
        await File.AppendAllTextAsync(Path.Combine(Path.GetTempPath(), "backuprelay-copy-allocations.txt"),
            $"{kind}: {allocated / 1048576.0:F1} MiB allocated copying {FileSize >> 20} MiB\n");
        Assert.True(allocated < FileSize / 4, $"{kind}: copying {FileSize >> 20} MiB allocated {allocated >> 20} MiB");
    }
}
