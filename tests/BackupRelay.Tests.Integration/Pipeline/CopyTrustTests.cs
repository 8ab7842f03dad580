using System.Net;
using System.Text.Json.Nodes;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// What a copy proves, end to end through the local host and the emulator: a source that cannot vouch for its
/// bytes (objects encrypted at rest, whose ETag is not an MD5) gives a copy that is stored, says
/// <c>received-only</c> everywhere and never makes its graph fresh; a GES name that would leave the container
/// never becomes a path.
/// </summary>
public sealed class CopyTrustTests : PipelineHarness
{
    private const string Escaping = "a1b2c3d4-0000-4000-8000-00000000000e";

    protected override void ExtendSeed(EmulatorSeed seed)
    {
        seed.Settings.ServerSideEncryption = "kms";
        seed.Graphs.Add(new SeedGraph { Id = Escaping, Name = "../victim", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [Block + 3, 10] });
    }

    protected override Dictionary<string, string?> ExtraSettings() => new()
    {
        ["Backup:Graphs:2:GraphId"] = Escaping,
        ["Http:HealthCacheDuration"] = "00:00:00",
    };

    private async Task<RunRecord> BackUpNowAsync(string graphId)
    {
        using var response = await Api.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/graphs/{graphId}/backups")
        {
            Headers = { { "x-functions-key", FunctionKey } },
        });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        return (await WaitForRunsAsync(1)).Single(r => r.Id == id);
    }

    private async Task<JsonNode> GetAsync(string path)
    {
        using var response = await Api.SendAsync(new HttpRequestMessage(HttpMethod.Get, path) { Headers = { { "x-functions-key", FunctionKey } } });
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    [Fact]
    public async Task An_encrypted_source_gives_a_received_only_copy_that_keeps_its_graph_unverified_in_the_api_and_health()
    {
        var run = await BackUpNowAsync(GraphA);

        // Copied, not failed forever on an ETag that is not an MD5, and never called verified.
        Assert.True(run.Status == RunStatus.Succeeded, string.Join("; ", run.Errors.Select(e => e.Reason)));
        Assert.Equal(CopyLevel.ReceivedOnly, run.Copy!.Level);
        foreach (var file in run.Files.Where(f => f.Size > 0))
        {
            Assert.Equal(Verification.ReceivedOnly, file.Verification);
            Assert.Contains("encrypted at rest (kms)", file.VerificationNote, StringComparison.Ordinal);
            Assert.Contains(run.Copy.Unchecked, u => u.StartsWith(file.Name + " ", StringComparison.Ordinal));
        }

        var backup = State.Backups.Single(b => b.Id == run.BackupId);
        foreach (var file in backup.Files.Where(f => f.Size > 0))
        {
            var stored = (await Destination.GetBlobClient($"orders/{run.BackupId}/{file.Name}").GetPropertiesAsync()).Value.Metadata;
            Assert.Equal(BlobCopyDestination.VerifiedReceivedOnly, stored[CopyMetadata.Verified]);
        }

        var graph = await GetAsync($"/api/graphs/{GraphA}");
        Assert.Equal("Unverified", graph["state"]!.GetValue<string>());
        Assert.Null(graph["lastVerifiedCopy"]);
        Assert.Equal(run.Id, graph["unverifiedCopy"]!["runId"]!.GetValue<string>());
        Assert.Equal("received-only", graph["unverifiedCopy"]!["level"]!.GetValue<string>());

        var health = await GetAsync("/api/health");
        Assert.Equal("degraded", health["status"]!.GetValue<string>());
        Assert.Contains(GraphA, health["unverifiedGraphs"]!.AsArray().Select(g => g!.GetValue<string>()));
        Assert.Contains(Logs.Lines(), l => l.Contains($"Graph {GraphA} is Unverified", StringComparison.Ordinal));

        var served = await GetAsync($"/api/runs/{run.Id}");
        Assert.Equal("received-only", served["copy"]!["level"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_ges_graph_name_that_would_leave_the_container_is_not_a_path()
    {
        var run = await BackUpNowAsync(Escaping);
        Assert.True(run.Status == RunStatus.Succeeded, string.Join("; ", run.Errors.Select(e => e.Reason)));

        // The name is data: the copy is in the graph id's folder, inside the configured container, and nowhere else.
        await foreach (var container in Storage.Blobs.GetBlobContainersAsync())
        {
            Assert.DoesNotContain("victim", container.Name, StringComparison.Ordinal);
        }

        var names = new List<string>();
        await foreach (var blob in Destination.GetBlobsAsync())
        {
            names.Add(blob.Name);
        }

        Assert.Contains($"{Escaping}/{run.BackupId}/{CopyBackupFileHandler.ManifestName}", names);
        Assert.All(names, n => Assert.StartsWith($"{Escaping}/", n, StringComparison.Ordinal));
        Assert.Equal("../victim", run.GraphName);
    }
}
