using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// One long copy in one invocation (no slices): the host keeps its message hidden for as long as the
/// invocation lives, however long that is; and a worker killed in the middle leaves its staged blocks,
/// from which the next delivery goes on instead of starting again.
/// </summary>
public sealed class CopyDeliveryTests : PipelineHarness
{
    private const string Long = "a1b2c3d4-0000-4000-8000-0000000000e1";
    private const int Blocks = 64;

    protected override TimeSpan MessageVisibility => TimeSpan.FromSeconds(2);

    protected override void ExtendSeed(EmulatorSeed seed)
    {
        seed.Graphs.Add(new SeedGraph { Id = Long, Name = "long", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [Block * Blocks] });
    }

    // Every read of the long file's blocks answers after 1 s: 64 blocks over at most 16 connections take
    // at least 4 s, twice the message's 2 s visibility.
    protected override Task BeforeHostStartsAsync()
    {
        State.Faults.Add(new FaultSpec { Method = "GET", Path = "/obs/*br01.tar", Kind = "latency", DelayMs = 1000, Count = 0 });
        return Task.CompletedTask;
    }

    protected override Dictionary<string, string?> ExtraSettings() => new()
    {
        ["Backup:Graphs:2:GraphId"] = Long,
        ["Copy:SliceMaxBytes"] = "0",
    };

    private async Task<Runs.RunRecord> BackUpAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/graphs/{Long}/backups");
        request.Headers.Add("x-functions-key", FunctionKey);
        using var accepted = await Api.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.Accepted, accepted.StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if ((await Runs.ListAsync()).SingleOrDefault() is { BackupId: not null, Files.Count: > 0 } run)
            {
                return run;
            }

            Assert.True(DateTime.UtcNow < deadline, "the backup never reached its copy");
            await Task.Delay(50);
        }
    }

    private int SourceReads(string file) =>
        State.RecordedRequests().Count(r => r.Method == "GET" && r.Path.StartsWith("/obs/", StringComparison.Ordinal) && r.Path.EndsWith(file, StringComparison.Ordinal));

    [Fact]
    public async Task A_copy_longer_than_its_message_visibility_is_delivered_once()
    {
        var started = await BackUpAsync();
        var run = Assert.Single(await WaitForRunsAsync(1, TimeSpan.FromSeconds(120)));
        await AssertCopiedAsync(run, "long");
        Assert.True(run.CompletedAt - started.CreatedAt > 2 * MessageVisibility, $"the copy took {run.CompletedAt - started.CreatedAt}");
        Assert.Equal(1, LocalHost.Invocations[FunctionNames.CopyBackupFile]);
    }

    [Fact]
    public async Task A_worker_killed_mid_copy_leaves_staged_blocks_the_next_delivery_goes_on_from()
    {
        var started = await BackUpAsync();
        var file = started.Files.Single().Name;
        var blob = Destination.GetBlockBlobClient($"long/{started.BackupId}/{file}");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var staged = 0;
        while (staged < Blocks / 2)
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {staged} blocks were staged");
            await Task.Delay(20);
            try
            {
                staged = (await blob.GetBlockListAsync(BlockListTypes.Uncommitted)).Value.UncommittedBlocks.Count();
            }
            catch (Azure.RequestFailedException ex) when (ex.Status == 404)
            {
            }
        }

        await LocalHost.Worker!.KillAsync();
        var run = Assert.Single(await WaitForRunsAsync(1, TimeSpan.FromSeconds(120)));
        await AssertCopiedAsync(run, "long");
        Assert.True(LocalHost.WorkerStarts >= 2, "the worker was not restarted");
        Assert.Equal(2, LocalHost.Invocations[FunctionNames.CopyBackupFile]);

        // Starting again would read every block a second time (at least Blocks + staged reads); going on
        // from the staged blocks reads only the rest, plus the reads the kill cut short.
        var reads = SourceReads(file);
        Assert.True(reads >= Blocks && reads < Blocks + staged, $"{reads} reads of {Blocks} blocks with {staged} staged at the kill");
    }
}
