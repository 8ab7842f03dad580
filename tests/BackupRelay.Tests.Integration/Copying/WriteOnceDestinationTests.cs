using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using BackupRelay.Copying;

namespace BackupRelay.Tests.Integration.Copying;

/// <summary>
/// Copies into a container under a time-based immutability policy. Azurite has none, so the container's
/// client goes through <see cref="ImmutabilityPolicy"/>, which answers as Azure does (409
/// <c>BlobImmutableDueToPolicy</c>) to any change of a blob after its commit; everything else reaches Azurite.
/// </summary>
public sealed class WriteOnceDestinationTests : CopyHarness
{
    private const long Size = (Block * 7) + 5;

    [Fact]
    public async Task A_copy_resumed_in_another_process_commits_once_with_its_hashes_and_changes_nothing_after()
    {
        var file = await BackupFileAsync(Size);
        var (destination, policy) = await WriteOnceAsync(writeOnce: true);

        // The first slice in one process, the rest in another (no hash state there).
        var first = await Copier(o => o.SliceMaxBytes = Block * 3).CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Continue, first.Outcome);
        var rest = await Copier(o => o.SliceMaxBytes = Block * 3).CopyAsync(destination, Request(file, first.Continuation));

        // Read again from byte 0 and run to the end in that invocation, instead of hashing back a committed blob.
        await AssertCopiedAsync(destination, file, rest);
        Assert.False(rest.Statistics.HashesRecomputed);
        Assert.Equal(file.Size, rest.Statistics.BytesFromSource);
        Assert.Contains(Logs.Collector.GetSnapshot(), r => r.Id.Id == 39);
        Assert.Equal(1, policy.Commits);
        Assert.Empty(policy.Refused);
        var metadata = (await destination.Container.GetBlobClient(PathOf(file)).GetPropertiesAsync()).Value.Metadata;
        Assert.Equal("true", metadata[CopyMetadata.Verified]);
        Assert.Equal(rest.Sha256Hex, metadata[CopyMetadata.Sha256]);

        // Delivered again: already complete, nothing written.
        var again = await Copier().CopyAsync(destination, Request(file));
        Assert.True(again.Statistics.AlreadyComplete);
        Assert.Equal(1, policy.Commits);
        Assert.Empty(policy.Refused);
    }

    [Fact]
    public async Task The_policy_refuses_the_hash_back_path_so_a_destination_not_told_it_is_write_once_cannot_verify()
    {
        // The same copy against the same policy, the destination not flagged: commit, then metadata set after
        // commit, refused. This is what immutabilityDays > 0 without Destination__WriteOnce would do.
        var file = await BackupFileAsync(Size);
        var (destination, policy) = await WriteOnceAsync(writeOnce: false);
        var first = await Copier(o => o.SliceMaxBytes = Block * 3).CopyAsync(destination, Request(file));
        var failure = await Assert.ThrowsAnyAsync<Azure.RequestFailedException>(async () =>
        {
            var result = await Copier(o => o.SliceMaxBytes = Block * 3).CopyAsync(destination, Request(file, first.Continuation));
            while (result.Outcome == CopyOutcome.Continue)
            {
                result = await Copier(o => o.SliceMaxBytes = Block * 3).CopyAsync(destination, Request(file, result.Continuation));
            }
        });
        Assert.Equal("BlobImmutableDueToPolicy", failure.ErrorCode);
        Assert.NotEmpty(policy.Refused);
        Assert.False((await destination.GetCommittedAsync(PathOf(file)))!.Verified);
    }

    [Fact]
    public async Task Server_side_mode_streams_instead_on_a_write_once_destination()
    {
        var file = await BackupFileAsync(Size);
        var (destination, policy) = await WriteOnceAsync(writeOnce: true);
        var result = await Copier(o => o.Mode = CopyMode.ServerSide).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(file.Size, result.Statistics.BytesFromSource);
        Assert.Empty(policy.Refused);
    }

    [Fact]
    public async Task A_small_file_is_written_once_and_a_second_write_is_refused_not_replaced()
    {
        var (destination, policy) = await WriteOnceAsync(writeOnce: true);
        await destination.WriteSmallFileAsync("g/b/manifest.json", "{\"v\":1}"u8.ToArray(), "application/json");
        await Assert.ThrowsAnyAsync<Azure.RequestFailedException>(
            () => destination.WriteSmallFileAsync("g/b/manifest.json", "{\"v\":2}"u8.ToArray(), "application/json"));
        Assert.Equal("{\"v\":1}", Encoding.UTF8.GetString((await destination.ReadSmallFileAsync("g/b/manifest.json"))!));
        var refused = policy.Refused.Count;

        // The start-up write check leaves no blob behind, however often it runs.
        await destination.CheckWriteAsync();
        await destination.CheckWriteAsync();
        Assert.Null(await destination.GetCommittedAsync(".backuprelay/write-check"));
        Assert.Equal(refused, policy.Refused.Count);
    }

    private async Task<(BlobCopyDestination Destination, ImmutabilityPolicy Policy)> WriteOnceAsync(bool writeOnce)
    {
        var azurite = await Azurite.InstanceAsync();
        var policy = new ImmutabilityPolicy { InnerHandler = new SocketsHttpHandler() };
        var container = new BlobContainerClient(azurite.ConnectionString, "worm-" + Guid.NewGuid().ToString("N")[..20],
            new BlobClientOptions(BackupRelay.Storage.StorageClientSettings.BlobVersion) { Transport = new HttpClientTransport(new HttpClient(policy)) });
        await container.CreateIfNotExistsAsync();
        return (new BlobCopyDestination(container, writeOnce), policy);
    }

    /// <summary>
    /// Azure's rules for a container with a time-based retention policy: a blob can be created and read;
    /// once committed it cannot be overwritten (Put Blob, Put Block List), have its properties or metadata
    /// set, or be deleted. Staging blocks of a blob is not a change to it.
    /// </summary>
    private sealed class ImmutabilityPolicy : DelegatingHandler
    {
        private readonly ConcurrentDictionary<string, bool> _committed = new(StringComparer.Ordinal);
        private int _commits;

        public ConcurrentQueue<string> Refused { get; } = new();

        public int Commits => _commits;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var path = request.RequestUri!.AbsolutePath;
            var comp = System.Web.HttpUtility.ParseQueryString(request.RequestUri.Query)["comp"];
            var isBlob = System.Web.HttpUtility.ParseQueryString(request.RequestUri.Query)["restype"] is null;
            var creates = request.Method == HttpMethod.Put && comp is null or "blocklist";
            var changes = creates || (request.Method == HttpMethod.Put && comp is "metadata" or "properties" or "tier")
                || request.Method == HttpMethod.Delete;
            if (isBlob && changes && _committed.ContainsKey(path))
            {
                Refused.Enqueue($"{request.Method} {path} comp={comp}");
                var refusal = new HttpResponseMessage(HttpStatusCode.Conflict)
                {
                    Content = new StringContent("<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobImmutableDueToPolicy</Code>" +
                        "<Message>This operation is not permitted as the blob is immutable due to a policy.</Message></Error>", Encoding.UTF8, "application/xml"),
                };
                refusal.Headers.Add("x-ms-error-code", "BlobImmutableDueToPolicy");
                return refusal;
            }

            var response = await base.SendAsync(request, cancellationToken);
            if (isBlob && creates && response.IsSuccessStatusCode)
            {
                _committed[path] = true;
                Interlocked.Increment(ref _commits);
            }

            return response;
        }
    }
}
