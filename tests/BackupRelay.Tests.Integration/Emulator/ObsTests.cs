using System.Net;
using System.Net.Http.Headers;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Emulator;

public sealed class ObsTests : EmulatorHarness
{
    private async Task<(string BackupId, string Name, long Size, string Link)> FirstFileAsync()
    {
        var token = await TokenAsync();
        var backupId = await CompletedBackupAsync(token);
        var (_, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}/backup-files?backup_id={backupId}", token: token);
        var file = body!["files"]![0]!;
        return (backupId, file["name"]!.GetValue<string>(), 3 * 1024 * 1024, file["download_link"]!.GetValue<string>());
    }

    internal static byte[] Expected(string backupId, string name, long offset, int length)
    {
        var bytes = new byte[length];
        BackupContent.Fill(BackupContent.Seed(backupId, name), offset, bytes);
        return bytes;
    }

    [Fact]
    public async Task Whole_file_downloads_with_the_deterministic_bytes()
    {
        var (backupId, name, size, link) = await FirstFileAsync();
        using var response = await Http.GetAsync(link);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(size, response.Content.Headers.ContentLength);
        Assert.Equal("bytes", response.Headers.AcceptRanges.Single());
        Assert.Equal(Expected(backupId, name, 0, (int)size), await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task A_wan_shaped_source_waits_before_the_first_byte_and_caps_each_connection()
    {
        var (backupId, name, _, link) = await FirstFileAsync();
        State.Settings.ObsTimeToFirstByteMs = 300;
        State.Settings.ObsBytesPerSecondPerConnection = 1024 * 1024;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Get, link);
        request.Headers.Range = new RangeHeaderValue(0, (512 * 1024) - 1);
        using var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var firstByte = watch.Elapsed;
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var total = watch.Elapsed;

        // Lower bounds only: the shaping never lets bytes through sooner than configured.
        Assert.True(firstByte >= TimeSpan.FromMilliseconds(280), $"first byte after {firstByte}");
        Assert.True(total - firstByte >= TimeSpan.FromMilliseconds(420), $"512 KiB at 1 MiB/s in {total - firstByte}");
        Assert.Equal(Expected(backupId, name, 0, 512 * 1024), bytes);
    }

    [Theory]
    [InlineData(0L, 0L)]
    [InlineData(10L, 19L)]
    [InlineData(1_048_575L, 2_097_152L)]
    [InlineData(3_145_700L, 3_145_727L)]
    public async Task Range_answers_206_with_content_range_and_those_bytes(long from, long to)
    {
        var (backupId, name, size, link) = await FirstFileAsync();
        var request = new HttpRequestMessage(HttpMethod.Get, link);
        request.Headers.Range = new RangeHeaderValue(from, to);
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal($"bytes {from}-{to}/{size}", response.Content.Headers.ContentRange!.ToString());
        Assert.Equal(Expected(backupId, name, from, (int)(to - from + 1)), await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Open_ended_range_and_invalid_range()
    {
        var (_, _, size, link) = await FirstFileAsync();
        var open = new HttpRequestMessage(HttpMethod.Get, link);
        open.Headers.TryAddWithoutValidation("Range", $"bytes={size - 5}-");
        using var tail = await Http.SendAsync(open);
        Assert.Equal(HttpStatusCode.PartialContent, tail.StatusCode);
        Assert.Equal(5, (await tail.Content.ReadAsByteArrayAsync()).Length);

        var invalid = new HttpRequestMessage(HttpMethod.Get, link);
        invalid.Headers.TryAddWithoutValidation("Range", "bytes=9-2");
        using var whole = await Http.SendAsync(invalid);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Null(whole.Content.Headers.ContentRange);

        var beyond = new HttpRequestMessage(HttpMethod.Get, link);
        beyond.Headers.TryAddWithoutValidation("Range", $"bytes={size}-");
        using var unsatisfiable = await Http.SendAsync(beyond);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, unsatisfiable.StatusCode);
    }

    [Fact]
    public async Task Expired_link_is_403_AccessDenied_in_obs_xml()
    {
        var (_, _, _, link) = await FirstFileAsync();
        Advance(3601);
        using var response = await Http.GetAsync(link);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var xml = System.Xml.Linq.XDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("AccessDenied", xml.Root!.Element("Code")!.Value);
        Assert.Equal("Request has expired", xml.Root.Element("Message")!.Value);
        Assert.NotEmpty(xml.Root.Element("RequestId")!.Value);
    }

    [Fact]
    public async Task Link_lifetime_is_configurable()
    {
        State.Settings.LinkLifetimeSeconds = 30;
        var (_, _, _, link) = await FirstFileAsync();
        Advance(29);
        using (var ok = await Http.GetAsync(link, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        Advance(2);
        using var expired = await Http.GetAsync(link);
        Assert.Equal(HttpStatusCode.Forbidden, expired.StatusCode);
    }

    [Theory]
    [InlineData("Expires=", "Expires=1")]
    [InlineData("Signature=", "Signature=AAAA")]
    [InlineData("br01.tar", "br02.tar")]
    public async Task Tampered_link_is_403_SignatureDoesNotMatch(string find, string replace)
    {
        var (_, _, _, link) = await FirstFileAsync();
        var tampered = link.Replace(find, replace, StringComparison.Ordinal);
        Assert.NotEqual(link, tampered);
        using var response = await Http.GetAsync(tampered);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var xml = System.Xml.Linq.XDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("SignatureDoesNotMatch", xml.Root!.Element("Code")!.Value);
    }

    [Fact]
    public async Task Unsigned_request_is_denied()
    {
        var (_, _, _, link) = await FirstFileAsync();
        using var response = await Http.GetAsync(link[..link.IndexOf('?', StringComparison.Ordinal)]);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }
}

/// <summary>
/// A large object streamed through the in-process emulator, watched through this process's managed heap: alone (the serial
/// collection), since tests running beside it would allocate in the same heap.
/// </summary>
[Collection(BackupRelay.Tests.Integration.Pipeline.SerialCollection.Name)]
public sealed class ObsStreamingMemoryTests : EmulatorHarness
{
    [Fact]
    public async Task A_5_GiB_file_serves_its_tail_directly_and_streams_its_head_without_the_emulator_holding_it()
    {
        const long size = 5L * 1024 * 1024 * 1024;
        const long Streamed = 128L << 20;
        await Http.PostAsync("_emulator/graphs", Json($$"""{"id":"big","name":"big","projectId":"{{ProjectId}}","backups":[{"id":"big-backup","fileSizes":[{{size}}]}]}"""));
        var token = await TokenAsync();
        var (_, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/big/backup-files?backup_id=big-backup", token: token);
        var file = body!["files"]![0]!;
        Assert.Equal(size / 1024, file["size"]!.GetValue<long>());
        var link = file["download_link"]!.GetValue<string>();

        // The last bytes are served directly: nothing before them is generated or held.
        var request = new HttpRequestMessage(HttpMethod.Get, link);
        request.Headers.Range = new RangeHeaderValue(size - 4096, size - 1);
        using var tail = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, tail.StatusCode);
        Assert.Equal(ObsTests.Expected("big-backup", file["name"]!.GetValue<string>(), size - 4096, 4096), await tail.Content.ReadAsByteArrayAsync());

        // Stream 128 MiB of it and watch this process's live managed heap (the emulator runs in-process).
        GC.Collect();
        var baseline = GC.GetTotalMemory(true);
        var peak = 0L;
        var first = new HttpRequestMessage(HttpMethod.Get, link);
        first.Headers.Range = new RangeHeaderValue(0, Streamed - 1);
        using var response = await Http.SendAsync(first, HttpCompletionOption.ResponseHeadersRead);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[1 << 20];
        long total = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            total += read;
            if ((total & ((16 << 20) - 1)) < read)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(true) - baseline);
            }
        }

        Assert.Equal(Streamed, total);
        // 128 MiB went through; the heap stayed an order of magnitude below it.
        Assert.True(peak < Streamed / 8, $"managed heap grew by {peak / (1 << 20)} MiB while streaming");
    }
}
