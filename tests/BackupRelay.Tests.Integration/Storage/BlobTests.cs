using System.Security.Cryptography;
using System.Text;
using BackupRelay.Storage;
using BackupRelay.Storage.Auth;
using BackupRelay.Storage.Blobs;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Integration.Storage;

public sealed class BlobTests : StorageHarness
{
    private async Task<BlobContainer> NewContainerAsync(bool publicAccess = false)
    {
        var container = Account.GetContainer(UniqueName("c"));
        Assert.True(await container.CreateIfNotExistsAsync(publicAccess));
        return container;
    }

    private static string BlockId(int i) => Convert.ToBase64String(Encoding.ASCII.GetBytes($"block-{i:000000}"));

    [Fact]
    public async Task Container_create_is_idempotent()
    {
        var container = await NewContainerAsync();
        Assert.False(await container.CreateIfNotExistsAsync());
    }

    [Fact]
    public async Task Small_blob_put_get_with_type_metadata_and_etag()
    {
        var container = await NewContainerAsync();
        var bytes = Encoding.UTF8.GetBytes("""{"status":"Queued"}""");
        var put = await container.PutBlobAsync("runs/r 1.json", bytes, new BlobWriteOptions
        {
            ContentType = "application/json",
            ContentMd5 = MD5.HashData(bytes),
            Metadata = new Dictionary<string, string> { ["kind"] = "run" },
        });
        Assert.True(put.Succeeded);
        var got = await container.GetBlobAsync("runs/r 1.json");
        Assert.Equal(bytes, got!.Content);
        Assert.Equal(put.ETag, got.Properties.ETag);
        Assert.Equal("application/json", got.Properties.ContentType);
        Assert.Equal("run", got.Properties.Metadata["kind"]);
        Assert.Equal(MD5.HashData(bytes), got.Properties.ContentMd5);
        Assert.Null(await container.GetBlobAsync("runs/missing.json"));
        Assert.Null(await container.GetPropertiesAsync("runs/missing.json"));
    }

    [Fact]
    public async Task Create_only_if_absent_and_update_only_if_unchanged()
    {
        var container = await NewContainerAsync();
        var created = await container.PutBlobAsync("r.json", "1"u8.ToArray(), new BlobWriteOptions { IfNotExists = true });
        Assert.True(created.Succeeded);
        var duplicate = await container.PutBlobAsync("r.json", "2"u8.ToArray(), new BlobWriteOptions { IfNotExists = true });
        Assert.Contains(duplicate.Outcome, new[] { WriteOutcome.PreconditionFailed, WriteOutcome.Conflict });

        var updated = await container.PutBlobAsync("r.json", "3"u8.ToArray(), new BlobWriteOptions { IfMatch = created.ETag });
        Assert.True(updated.Succeeded);
        var stale = await container.PutBlobAsync("r.json", "4"u8.ToArray(), new BlobWriteOptions { IfMatch = created.ETag });
        Assert.Equal(WriteOutcome.PreconditionFailed, stale.Outcome);
        Assert.Equal("3"u8.ToArray(), (await container.GetBlobAsync("r.json"))!.Content);
    }

    [Fact]
    public async Task Two_writers_racing_on_one_record_exactly_one_wins()
    {
        var container = await NewContainerAsync();
        var initial = await container.PutBlobAsync("race.json", "0"u8.ToArray());
        for (var round = 0; round < 10; round++)
        {
            var etag = (await container.GetPropertiesAsync("race.json"))!.ETag;
            var results = await Task.WhenAll(
                container.PutBlobAsync("race.json", Encoding.UTF8.GetBytes($"a{round}"), new BlobWriteOptions { IfMatch = etag }),
                container.PutBlobAsync("race.json", Encoding.UTF8.GetBytes($"b{round}"), new BlobWriteOptions { IfMatch = etag }));
            Assert.Equal(1, results.Count(r => r.Succeeded));
            Assert.Equal(1, results.Count(r => r.Outcome == WriteOutcome.PreconditionFailed));
            var winner = results[0].Succeeded ? $"a{round}" : $"b{round}";
            Assert.Equal(winner, Encoding.UTF8.GetString((await container.GetBlobAsync("race.json"))!.Content));
        }

        Assert.NotNull(initial.ETag);
    }

    [Fact]
    public async Task Block_blob_staged_listed_committed_with_md5_and_metadata_then_read_by_range()
    {
        var container = await NewContainerAsync();
        var blocks = Enumerable.Range(0, 3).Select(i => RandomNumberGenerator.GetBytes(100_000 + i)).ToArray();
        await container.PutBlockAsync("big/file.bin", BlockId(0), blocks[0], MD5.HashData(blocks[0]));
        await container.PutBlockAsync("big/file.bin", BlockId(1), blocks[1]);
        await container.PutBlockAsync("big/file.bin", BlockId(2), blocks[2]);
        var staged = await container.GetBlockListAsync("big/file.bin");
        Assert.Empty(staged.Committed);
        Assert.Equal([BlockId(0), BlockId(1), BlockId(2)], staged.Uncommitted.Select(b => b.Id).Order());
        Assert.Equal(100_001, staged.Uncommitted.Single(b => b.Id == BlockId(1)).Size);

        var whole = blocks.SelectMany(b => b).ToArray();
        var commit = await container.PutBlockListAsync("big/file.bin", [BlockId(0), BlockId(1), BlockId(2)], new BlobWriteOptions
        {
            ContentMd5 = MD5.HashData(whole),
            Metadata = new Dictionary<string, string> { ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(whole)) },
        });
        Assert.True(commit.Succeeded);

        var properties = (await container.GetPropertiesAsync("big/file.bin"))!;
        Assert.Equal(whole.Length, properties.Length);
        Assert.Equal(MD5.HashData(whole), properties.ContentMd5);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(whole)), properties.Metadata["sha256"]);
        var list = await container.GetBlockListAsync("big/file.bin");
        Assert.Equal(3, list.Committed.Count);
        Assert.Empty(list.Uncommitted);

        await using var range = await container.OpenReadAsync("big/file.bin", 99_990, 30);
        using var copy = new MemoryStream();
        await range.CopyToAsync(copy);
        Assert.Equal(whole.AsSpan(99_990, 30).ToArray(), copy.ToArray());
    }

    [Fact]
    public async Task Block_from_url_copies_server_side_from_a_blob_the_service_can_reach()
    {
        var source = await NewContainerAsync(publicAccess: true);
        var data = RandomNumberGenerator.GetBytes(300_000);
        await source.PutBlobAsync("src.bin", data);
        var target = await NewContainerAsync();
        await target.PutBlockFromUrlAsync("dst.bin", BlockId(0), source.BlobUri("src.bin"), 0, 200_000);
        await target.PutBlockFromUrlAsync("dst.bin", BlockId(1), source.BlobUri("src.bin"), 200_000, 100_000);
        await target.PutBlockListAsync("dst.bin", [BlockId(0), BlockId(1)]);
        Assert.Equal(data, (await target.GetBlobAsync("dst.bin"))!.Content);
    }

    [Fact]
    public async Task List_by_prefix_and_delete()
    {
        var container = await NewContainerAsync();
        foreach (var name in new[] { "g1/b1/a", "g1/b1/b", "g1/b2/a", "g2/b1/a" })
        {
            await container.PutBlobAsync(name, Encoding.UTF8.GetBytes(name));
        }

        var items = await container.ListAsync("g1/b1/").ToListAsync();
        Assert.Equal(["g1/b1/a", "g1/b1/b"], items.Select(i => i.Name));
        Assert.All(items, i => Assert.Equal(7, i.Length));
        Assert.Equal(4, (await container.ListAsync().ToListAsync()).Count);
        Assert.True(await container.DeleteAsync("g1/b1/a"));
        Assert.False(await container.DeleteAsync("g1/b1/a"));
        Assert.Single(await container.ListAsync("g1/b1/").ToListAsync());
    }

    [Fact]
    public async Task Sas_connection_works_for_blobs()
    {
        var sas = AccountSas.Create("devstoreaccount1", StorageConnection.DevelopmentAccountKey, DateTimeOffset.UtcNow.AddHours(1));
        using var account = new StorageAccount(StorageConnection.Parse(
            $"BlobEndpoint=http://127.0.0.1:{Azurite.BlobPort}/devstoreaccount1;SharedAccessSignature={sas}"),
            TimeProvider.System, NullLogger.Instance);
        var container = account.GetContainer(UniqueName("sas"));
        Assert.True(await container.CreateIfNotExistsAsync());
        await container.PutBlockAsync("f", BlockId(0), "abc"u8.ToArray());
        await container.PutBlockListAsync("f", [BlockId(0)]);
        Assert.Equal("abc"u8.ToArray(), (await container.GetBlobAsync("f"))!.Content);
    }
}
