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

    // Every read of the long file answers after 2 s: the probe and at least one more round of requests take at
    // least 4 s, twice the message's 2 s visibility.
    protected override Task BeforeHostStartsAsync()
    {
        State.Faults.Add(new FaultSpec { Method = "GET", Path = "/obs/*br01.tar", Kind = "latency", DelayMs = 2000, Count = 0 });
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

    private long BytesServed(string file) =>
        State.RecordedRequests().Where(r => r.Method == "GET" && r.Path.StartsWith("/obs/", StringComparison.Ordinal) && r.Path.EndsWith(file, StringComparison.Ordinal))
            .Sum(r => r.BodyBytes);

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

        // Starting again would read every block a second time (at least Blocks + staged blocks' bytes); going on
        // from the staged blocks reads only the rest, plus what the kill cut short (at most a block per connection,
        // and the blocks spooled but not yet staged).
        var served = BytesServed(file);
        Assert.True(served >= (long)Block * Blocks && served < (long)Block * (Blocks + staged),
            $"{served} bytes served of {Block * Blocks} with {staged} blocks of {Block} staged at the kill");
    }
}
