using BackupRelay.Copying;

namespace BackupRelay.Tests.Unit;

public sealed class BlockPlanTests
{
    [Theory]
    [InlineData(0L, 8 * 1024 * 1024)]
    [InlineData(1L, 8 * 1024 * 1024)]
    [InlineData(400L * 1024 * 1024 * 1024, 9 * 1024 * 1024)]
    [InlineData(5L * 1024 * 1024 * 1024 * 1024, 105 * 1024 * 1024)]
    public void Block_size_grows_so_a_file_stays_under_50000_blocks(long size, int expected)
    {
        var blockSize = new CopyOptions().BlockSizeFor(size);
        Assert.Equal(expected, blockSize);
        Assert.True((size + blockSize - 1) / blockSize <= CopyOptions.MaxBlocks);
    }

    [Fact]
    public void Small_configured_blocks_stay_small_for_small_files() =>
        Assert.Equal(64 * 1024, new CopyOptions { BlockSizeBytes = 64 * 1024 }.BlockSizeFor(10 * 64 * 1024));

    [Fact]
    public void Block_ids_are_deterministic_fixed_length_and_parse_back()
    {
        var a = BlockIds.For(8 << 20, 0);
        var b = BlockIds.For(8 << 20, 5L * (8 << 20));
        Assert.Equal(a.Length, b.Length);
        Assert.Equal(a, BlockIds.For(8 << 20, 0));
        Assert.True(BlockIds.TryParse(b, out var size, out var offset));
        Assert.Equal(8 << 20, size);
        Assert.Equal(5L * (8 << 20), offset);
        Assert.False(BlockIds.TryParse(Convert.ToBase64String("other-block"u8.ToArray()), out _, out _));
    }

    [Fact]
    public async Task Budget_is_shared_fifo_and_never_exceeded()
    {
        var budget = new CopyBufferBudget(128);
        var first = await budget.RentAsync(64);
        var second = budget.RentAsync(64).AsTask();
        var third = budget.RentAsync(64).AsTask();
        var fourth = budget.RentAsync(32).AsTask();
        Assert.False(third.IsCompleted);
        Assert.False(fourth.IsCompleted); // FIFO: the small one waits behind the big one
        first.Dispose();
        var s = await second;
        var t = await third;
        Assert.False(fourth.IsCompleted);
        s.Dispose();
        var f = await fourth;
        Assert.Equal(96, budget.InUseBytes);
        t.Dispose();
        f.Dispose();
        Assert.Equal(0, budget.InUseBytes);
        Assert.True(budget.PeakInUseBytes <= 128);
    }

    [Theory]
    [InlineData(1, 40, 64)]
    [InlineData(3, 1024, 3 * 1024)]
    [InlineData(2, 9 * 1024 * 1024, 2 * 16 * 1024 * 1024)]
    public async Task A_lease_is_charged_what_the_pool_hands_out_not_what_was_asked(int count, int bytes, long charged)
    {
        var budget = new CopyBufferBudget(64L * 1024 * 1024);
        using var lease = await budget.RentAsync(count, bytes);
        Assert.Equal(count, lease.Buffers.Count);
        Assert.All(lease.Buffers, b => Assert.True(b.Length >= bytes));
        Assert.Equal(lease.Buffers.Sum(b => (long)b.Length), budget.InUseBytes);
        Assert.Equal(charged, budget.InUseBytes);
    }

    [Fact]
    public async Task A_cancelled_wait_gives_nothing_away()
    {
        var budget = new CopyBufferBudget(100);
        var held = await budget.RentAsync(100);
        using var cancel = new CancellationTokenSource();
        var waiting = budget.RentAsync(50, cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        held.Dispose();
        Assert.Equal(0, budget.InUseBytes);
        using var again = await budget.RentAsync(100);
        Assert.Equal(100, budget.InUseBytes);
    }
}
