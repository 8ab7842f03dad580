using System.Security.Cryptography;
using System.Text;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Sas;
using BackupRelay.Copying;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Storage;

/// <summary>
/// What the project adds on top of the SDK's blob client — conditional writes as outcomes, the copy
/// destination's staged-block resume and commit — against an Azurite that checks the API version.
/// </summary>
public sealed class BlobTests : StorageHarness
{
    private async Task<BlobContainerClient> NewContainerAsync(PublicAccessType access = PublicAccessType.None)
    {
        var container = Account.GetContainer(UniqueName("c"));
        Assert.NotNull((await container.CreateIfNotExistsAsync(access)));
        return container;
    }

    private static string BlockId(int i) => Convert.ToBase64String(Encoding.ASCII.GetBytes($"block-{i:000000}"));

    private static BlobUploadOptions Conditions(BlobRequestConditions conditions) => new() { Conditions = conditions };

    [Fact]
    public async Task Create_only_if_absent_and_update_only_if_unchanged_come_back_as_outcomes()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("r.json");
        var created = await BlobWrites.UploadAsync(blob, BinaryData.FromString("1"), Conditions(BlobWrites.IfNotExists()));
        Assert.True(created.Succeeded);
        var duplicate = await BlobWrites.UploadAsync(blob, BinaryData.FromString("2"), Conditions(BlobWrites.IfNotExists()));
        Assert.Contains(duplicate.Outcome, new[] { WriteOutcome.PreconditionFailed, WriteOutcome.Conflict });

        var updated = await BlobWrites.UploadAsync(blob, BinaryData.FromString("3"), Conditions(BlobWrites.IfMatch(created.ETag!.Value)));
        Assert.True(updated.Succeeded);
        var stale = await BlobWrites.UploadAsync(blob, BinaryData.FromString("4"), Conditions(BlobWrites.IfMatch(created.ETag!.Value)));
        Assert.Equal(WriteOutcome.PreconditionFailed, stale.Outcome);
        Assert.Equal("3", (await blob.DownloadContentAsync()).Value.Content.ToString());
    }

    [Fact]
    public async Task Two_writers_racing_on_one_record_exactly_one_wins()
    {
        var container = await NewContainerAsync();
        var blob = container.GetBlobClient("race.json");
        await blob.UploadAsync(BinaryData.FromString("0"));
        for (var round = 0; round < 10; round++)
        {
            var etag = (await blob.GetPropertiesAsync()).Value.ETag;
            var results = await Task.WhenAll(
                BlobWrites.UploadAsync(blob, BinaryData.FromString($"a{round}"), Conditions(BlobWrites.IfMatch(etag))),
                BlobWrites.UploadAsync(blob, BinaryData.FromString($"b{round}"), Conditions(BlobWrites.IfMatch(etag))));
            Assert.Equal(1, results.Count(r => r.Succeeded));
            Assert.Equal(1, results.Count(r => r.Outcome == WriteOutcome.PreconditionFailed));
            var winner = results[0].Succeeded ? $"a{round}" : $"b{round}";
            Assert.Equal(winner, (await blob.DownloadContentAsync()).Value.Content.ToString());
        }
    }

    [Fact]
    public async Task A_blob_that_does_not_exist_has_nothing_staged_and_no_committed_file()
    {
        var destination = new BlobCopyDestination(await NewContainerAsync());
        Assert.Empty(await destination.GetStagedBlocksAsync("never/written.bin"));
        Assert.Null(await destination.GetCommittedAsync("never/written.bin"));
    }

    [Fact]
    public async Task Staged_blocks_are_listed_for_resume_then_committed_with_md5_hashes_and_verified_mark()
    {
        var container = await NewContainerAsync();
        var destination = new BlobCopyDestination(container);
        var blocks = Enumerable.Range(0, 3).Select(i => RandomNumberGenerator.GetBytes(100_000 + i)).ToArray();
        await destination.StageBlockAsync("big/file.bin", BlockId(0), 0, blocks[0], MD5.HashData(blocks[0]));
        await destination.StageBlockAsync("big/file.bin", BlockId(1), 100_000, blocks[1], null);
        var staged = await destination.GetStagedBlocksAsync("big/file.bin");
        Assert.Equal([BlockId(0), BlockId(1)], staged.Keys.Order());
        Assert.Equal(100_001, staged[BlockId(1)]);
        await destination.StageBlockAsync("big/file.bin", BlockId(2), 200_001, blocks[2], null);

        var whole = blocks.SelectMany(b => b).ToArray();
        await destination.CommitAsync("big/file.bin", [BlockId(0), BlockId(1), BlockId(2)],
            new CommitInfo(whole.Length, MD5.HashData(whole), SHA256.HashData(whole), true, new Dictionary<string, string> { ["backup"] = "b1" }));

        var committed = (await destination.GetCommittedAsync("big/file.bin"))!;
        Assert.Equal(whole.Length, committed.Length);
        Assert.True(committed.Verified);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(whole)), committed.Sha256Hex);
        var properties = (await container.GetBlobClient("big/file.bin").GetPropertiesAsync()).Value;
        Assert.Equal(MD5.HashData(whole), properties.ContentHash);
        Assert.Equal("b1", properties.Metadata["backup"]);
        Assert.Empty(await destination.GetStagedBlocksAsync("big/file.bin"));

        await using var read = await destination.OpenReadAsync("big/file.bin");
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(whole, copy.ToArray());
    }

    [Fact]
    public async Task A_block_whose_md5_does_not_match_is_refused_by_the_service()
    {
        var destination = new BlobCopyDestination(await NewContainerAsync());
        var data = RandomNumberGenerator.GetBytes(1000);
        var wrong = MD5.HashData("something else"u8);
        await Assert.ThrowsAnyAsync<Exception>(() => destination.StageBlockAsync("f.bin", BlockId(0), 0, data, wrong));
        Assert.Empty(await destination.GetStagedBlocksAsync("f.bin"));
    }

    [Fact]
    public async Task Block_from_url_copies_server_side_from_a_blob_the_service_can_reach()
    {
        var source = await NewContainerAsync(PublicAccessType.Blob);
        var data = RandomNumberGenerator.GetBytes(300_000);
        await source.GetBlobClient("src.bin").UploadAsync(BinaryData.FromBytes(data));
        var target = new BlobCopyDestination(await NewContainerAsync());
        var uri = source.GetBlobClient("src.bin").Uri;
        await target.StageBlockFromUrlAsync("dst.bin", BlockId(0), uri, 0, 200_000);
        await target.StageBlockFromUrlAsync("dst.bin", BlockId(1), uri, 200_000, 100_000);
        await target.CommitAsync("dst.bin", [BlockId(0), BlockId(1)], new CommitInfo(data.Length, null, null, false, new Dictionary<string, string>()));
        Assert.Equal(data, (await target.Container.GetBlobClient("dst.bin").DownloadContentAsync()).Value.Content.ToArray());
    }

    [Fact]
    public async Task Sas_connection_works_for_blobs()
    {
        var sas = new AccountSasBuilder(AccountSasPermissions.All, DateTimeOffset.UtcNow.AddHours(1), AccountSasServices.Blobs, AccountSasResourceTypes.All)
            .ToSasQueryParameters(new StorageSharedKeyCredential(StorageConnection.DevelopmentAccountName, StorageConnection.DevelopmentAccountKey));
        var account = StorageAccount.FromConnectionString($"BlobEndpoint=http://127.0.0.1:{Azurite.BlobPort}/devstoreaccount1;SharedAccessSignature={sas}");
        var container = account.GetContainer(UniqueName("sas"));
        Assert.NotNull(await container.CreateIfNotExistsAsync());
        var destination = new BlobCopyDestination(container);
        await destination.StageBlockAsync("f", BlockId(0), 0, "abc"u8.ToArray(), null);
        await destination.CommitAsync("f", [BlockId(0)], new CommitInfo(3, null, null, false, new Dictionary<string, string>()));
        Assert.Equal("abc", (await container.GetBlobClient("f").DownloadContentAsync()).Value.Content.ToString());
    }
}
