using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Unit;

public sealed class ObsRangeTests
{
    [Theory]
    [InlineData("bytes=0-9", 100, 0, 9, true)]
    [InlineData("bytes=90-", 100, 90, 99, true)]
    [InlineData("bytes=-10", 100, 90, 99, true)]
    [InlineData("bytes=50-500", 100, 50, 99, true)]
    [InlineData("", 100, 0, 99, false)]
    [InlineData("bytes=9-1", 100, 0, 99, false)]
    [InlineData("bytes=a-b", 100, 0, 99, false)]
    [InlineData("bytes=0-1,5-6", 100, 0, 99, false)]
    [InlineData("items=0-1", 100, 0, 99, false)]
    public void Valid_ranges_are_served_and_invalid_ones_ignored_like_obs(string header, long size, long start, long end, bool partial) =>
        Assert.Equal((start, end, partial), ObsEndpoints.ParseRange(header, size));

    [Fact]
    public void A_start_beyond_the_end_is_unsatisfiable()
    {
        var (start, end, partial) = ObsEndpoints.ParseRange("bytes=100-", 100);
        Assert.True(partial);
        Assert.True(start > end);
    }
}
