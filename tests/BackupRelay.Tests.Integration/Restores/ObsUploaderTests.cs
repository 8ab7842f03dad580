using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Restores;
using BackupRelay.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Integration.Restores;

/// <summary>
/// The OBS upload engine against real S3-compatible servers: the project's emulator (OBS's rules and
/// error codes, Content-MD5 checks, the wire recorded) and s3rver (an independent implementation
/// checking Signature V4). The source is a copy in Azurite, as in production.
/// </summary>
public abstract class ObsUploaderTests : IAsyncLifetime
{
    protected const int Part = 100 * 1024;

    protected Azurite Azurite { get; private set; } = null!;
    protected BlobCopyDestination Source { get; private set; } = null!;
    protected UploadProgressStore Progress { get; private set; } = null!;
    protected ObsOptions Options { get; private set; } = null!;
    protected abstract string Bucket { get; }

    protected abstract Task<ObsOptions> StartServerAsync();

    /// <summary>
    /// The part numbers the server acknowledged (200) for <paramref name="key"/>, as the server recorded them;
    /// null where the server keeps no such record (s3rver: the uploader's own counts are all there is).
    /// </summary>
    protected virtual List<int>? AcknowledgedParts(string key) => null;

    /// <summary>Every write (not read) the server recorded for <paramref name="key"/>; null where it keeps none.</summary>
    protected virtual int? WritesTo(string key) => null;

    protected virtual string Describe(string key) => "";

    protected virtual Task StopServerAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        Azurite = await Azurite.InstanceAsync();
        var account = StorageAccount.FromConnectionString(Azurite.ConnectionString);
        var container = account.GetContainer("src-" + Guid.NewGuid().ToString("N"));
        await container.CreateIfNotExistsAsync();
        Source = new BlobCopyDestination(container);
        var runs = account.GetContainer("runs-" + Guid.NewGuid().ToString("N"));
        await runs.CreateIfNotExistsAsync();
        Progress = new UploadProgressStore(runs);
        Options = await StartServerAsync();
        Options.PartSizeBytes = Part;
        Options.MaxConcurrency = 3;
        Options.MaxErrorRetry = 2;

        // Sends do not grow here unless a test asks (its counts stay exact).
        Options.MaxUploadConnections = 3;
    }

    public Task DisposeAsync() => StopServerAsync();

    protected ObsUploader Uploader(CopyOptions? copy = null, CopyBufferBudget? budget = null) => new(
        new ObsClient(Microsoft.Extensions.Options.Options.Create(Options)), Source, Progress, budget ?? new CopyBufferBudget(8L * 1024 * 1024), new HashStateCache(),
        Microsoft.Extensions.Options.Options.Create(Options), Microsoft.Extensions.Options.Options.Create(copy ?? new CopyOptions()), TimeProvider.System,
        NullLogger<ObsUploader>.Instance);

    protected AmazonS3Client Reader() => new(new BasicAWSCredentials(Options.AccessKeyId, Options.SecretAccessKey), new AmazonS3Config
    {
        ServiceURL = Options.Endpoint!.ToString(),
        AuthenticationRegion = Options.Region,
        ForcePathStyle = true,
        RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
    });

    /// <summary>A copy file in the source container: random bytes, and the request that uploads it.</summary>
    protected async Task<(byte[] Bytes, UploadRequest Request)> CopyAsync(int size, string? name = null, string runId = "rfc-test")
    {
        var bytes = RandomNumberGenerator.GetBytes(size);
        name ??= $"f{Guid.NewGuid():N}.tar";
        var path = $"orders/b1/{name}";
        await Source.WriteSmallFileAsync(path, bytes, "application/octet-stream");
        return (bytes, new UploadRequest(runId, name, path, Bucket, $"restore/{runId}/{name}", size,
            Convert.ToHexStringLower(MD5.HashData(bytes)), Convert.ToHexStringLower(SHA256.HashData(bytes)), 0,
            new Dictionary<string, string> { ["backuprelay-run"] = runId }));
    }

    protected async Task<byte[]?> ReadObjectAsync(string key)
    {
        using var s3 = Reader();
        try
        {
            using var response = await s3.GetObjectAsync(Bucket, key);
            using var buffer = new MemoryStream();
            await response.ResponseStream.CopyToAsync(buffer);
            return buffer.ToArray();
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Runs slices until the file is done, as the queue would (a transient failure is a redelivery).</summary>
    protected static async Task<UploadResult> UntilDoneAsync(Func<ObsUploader> uploader, UploadRequest request, int maxCalls = 50)
    {
        for (var call = 0; call < maxCalls; call++)
        {
            UploadResult result;
            try
            {
                result = await uploader().UploadAsync(request, CancellationToken.None);
            }
            catch (ObsException ex) when (ex.Transient)
            {
                continue;
            }

            if (result.Outcome != UploadOutcome.Continue)
            {
                return result;
            }

            request = request with { Offset = result.Offset };
        }

        throw new TimeoutException("the upload did not finish");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Part)]
    [InlineData(Part + 1)]
    [InlineData((Part * 7) + 333)]
    public async Task A_file_reaches_obs_byte_exact_at_part_boundaries(int size)
    {
        var (bytes, request) = await CopyAsync(size);
        var result = await UntilDoneAsync(() => Uploader(), request);
        Assert.Equal(UploadOutcome.Completed, result.Outcome);
        Assert.Equal(bytes, await ReadObjectAsync(request.Key));
    }

    [Fact]
    public async Task Sliced_upload_resumes_on_another_instance_without_sending_acknowledged_parts_again()
    {
        var (bytes, request) = await CopyAsync((Part * 6) + 17);
        var copy = new CopyOptions { SliceMaxBytes = Part * 2 };
        var first = await Uploader(copy).UploadAsync(request, CancellationToken.None);
        Assert.Equal(UploadOutcome.Continue, first.Outcome);
        Assert.True(first.PartsUploaded >= 2);

        // Another instance: no hash state kept; it reads the parts before the slice again, sends none of them.
        var sent = first.PartsUploaded;
        var skipped = 0;
        var next = request with { Offset = first.Offset };
        UploadResult result;
        do
        {
            result = await Uploader(copy).UploadAsync(next, CancellationToken.None);
            sent += result.PartsUploaded;
            skipped += result.PartsSkipped;
            next = next with { Offset = result.Offset };
        }
        while (result.Outcome == UploadOutcome.Continue);

        Assert.Equal(UploadOutcome.Completed, result.Outcome);
        Assert.Equal(7, sent);
        Assert.True(skipped >= first.PartsUploaded, $"{skipped} parts skipped");
        Assert.Equal(bytes, await ReadObjectAsync(request.Key));

        // What the server received: each of the 7 parts once, none sent again by the second instance.
        if (AcknowledgedParts(request.Key) is { } received)
        {
            Assert.Equal(Enumerable.Range(1, 7), received.Order());
        }
    }

    private ObsReader ReadBack(CopyOptions? copy = null, HashStateCache? hashes = null) => new(
        new ObsClient(Microsoft.Extensions.Options.Options.Create(Options)), new CopyBufferBudget(8L * 1024 * 1024), hashes ?? new HashStateCache(),
        Microsoft.Extensions.Options.Options.Create(Options), Microsoft.Extensions.Options.Options.Create(copy ?? new CopyOptions()), TimeProvider.System)
    {
        RangeBytes = 64 * 1024,
    };

    [Fact]
    public async Task A_read_back_in_slices_hashes_what_the_server_holds_and_starts_over_where_its_state_is_gone()
    {
        var (bytes, request) = await CopyAsync((Part * 5) + 3);
        Assert.Equal(UploadOutcome.Completed, (await UntilDoneAsync(() => Uploader(), request)).Outcome);
        var read = new ReadBackRequest(request.RunId, request.File, Bucket, request.Key, bytes.Length, 0);
        var expected = new ObsReadBack(bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)));

        // Slices of 128 KiB on one instance: the hash state waits for the next slice.
        var copy = new CopyOptions { SliceMaxBytes = 128 * 1024 };
        var kept = new HashStateCache();
        var slices = 0;
        ReadBackResult result;
        do
        {
            result = await ReadBack(copy, kept).ReadAsync(read, CancellationToken.None);
            read = read with { Offset = result.Offset };
            slices++;
        }
        while (result.Served is null && result.Problem is null);

        Assert.Equal(expected, result.Served);
        Assert.Equal(4, slices);

        // A slice on another instance (no state there) reads from byte 0 again, to the same hashes.
        var elsewhere = await ReadBack().ReadAsync(read with { Offset = 128 * 1024 }, CancellationToken.None);
        Assert.Equal(expected, elsewhere.Served);
    }

    [Fact]
    public async Task A_read_back_of_an_object_that_is_not_the_copy_says_why()
    {
        var (bytes, request) = await CopyAsync(Part + 5);
        Assert.Equal(UploadOutcome.Completed, (await UntilDoneAsync(() => Uploader(), request)).Outcome);
        var longer = await ReadBack().ReadAsync(new ReadBackRequest(request.RunId, request.File, Bucket, request.Key, bytes.Length + 1, 0), CancellationToken.None);
        Assert.Contains($"it is {bytes.Length} bytes", longer.Problem);
        var absent = await ReadBack().ReadAsync(new ReadBackRequest(request.RunId, request.File, Bucket, request.Key + ".gone", bytes.Length, 0), CancellationToken.None);
        Assert.Contains("no such object", absent.Problem);
    }

    [Fact]
    public async Task Killed_mid_upload_the_next_delivery_keeps_the_parts_already_uploaded()
    {
        var (bytes, request) = await CopyAsync(Part * 10);
        using (var kill = new CancellationTokenSource())
        {
            // A process killed after a few parts: its calls end mid-flight.
            var uploader = Uploader(new CopyOptions { SliceMaxBytes = 0 }, new CopyBufferBudget(Part * 2));
            var upload = uploader.UploadAsync(request, kill.Token);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while ((await Progress.GetAsync(request.RunId, request.File, CancellationToken.None))?.Parts.Count is null or < 3)
            {
                // An upload that ended (or stalled) before its third part is a failure of its own, never a wait forever.
                Assert.False(upload.IsCompleted, $"the upload ended before its third part was recorded: {upload.Exception?.GetBaseException().Message ?? upload.Status.ToString()}");
                Assert.True(DateTime.UtcNow < deadline, "three parts were not recorded within 60 s");
                await Task.Delay(5);
            }

            await kill.CancelAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => upload);
        }

        var keptParts = (await Progress.GetAsync(request.RunId, request.File, CancellationToken.None))!.Parts.Select(p => p.Number).ToList();
        var kept = keptParts.Count;
        var result = await UntilDoneAsync(() => Uploader(), request);
        Assert.Equal(UploadOutcome.Completed, result.Outcome);
        Assert.True(result.PartsSkipped >= kept, $"{result.PartsSkipped} skipped of {kept} kept");
        Assert.Equal(10 - result.PartsSkipped, result.PartsUploaded);
        Assert.Equal(bytes, await ReadObjectAsync(request.Key));

        // What the server received: every part recorded before the kill exactly once (never sent again);
        // a part acknowledged after the kill but before its record may be sent twice, as at-least-once allows.
        if (AcknowledgedParts(request.Key) is { } received)
        {
            Assert.All(keptParts, n => Assert.Single(received, r => r == n));
            Assert.Equal(Enumerable.Range(1, 10), received.Distinct().Order());
        }
    }

    [Theory]
    [InlineData(50)]
    [InlineData((Part * 4) + 9)]
    public async Task A_copy_that_does_not_match_its_manifest_never_becomes_an_object(int size)
    {
        var (bytes, request) = await CopyAsync(size);
        bytes[size / 2] ^= 0x01;
        var damaged = request with { Sha256Hex = Convert.ToHexStringLower(SHA256.HashData(bytes)) };
        var result = await UntilDoneAsync(() => Uploader(), damaged);
        Assert.Equal(UploadOutcome.Failed, result.Outcome);
        Assert.Contains("does not match its manifest", result.FailureReason);
        Assert.Null(await ReadObjectAsync(request.Key));
        Assert.Null(await Progress.GetAsync(request.RunId, request.File, CancellationToken.None));
    }

    [Fact]
    public async Task A_copy_shorter_than_its_manifest_fails_naming_the_length()
    {
        var (_, request) = await CopyAsync(Part * 3);
        var longer = request with { Size = (Part * 3) + 10 };
        var result = await UntilDoneAsync(() => Uploader(), longer);
        Assert.Equal(UploadOutcome.Failed, result.Outcome);
        Assert.Contains("manifest says", result.FailureReason);
        Assert.Null(await ReadObjectAsync(request.Key));
    }

    [Fact]
    public async Task A_copy_longer_than_its_manifest_fails_naming_the_length()
    {
        // Each part is its own ranged read: the last one asks for a byte more, and gets it.
        var (_, request) = await CopyAsync(Part * 3);
        var shorter = request with { Size = (Part * 3) - 10 };
        var result = await UntilDoneAsync(() => Uploader(), shorter);
        Assert.Equal(UploadOutcome.Failed, result.Outcome);
        Assert.Contains("longer than the", result.FailureReason);
        Assert.Null(await ReadObjectAsync(request.Key));
    }

    [Fact]
    public async Task An_object_already_uploaded_and_verified_is_not_uploaded_again()
    {
        var (bytes, request) = await CopyAsync((Part * 2) + 5);
        Assert.Equal(UploadOutcome.Completed, (await UntilDoneAsync(() => Uploader(), request)).Outcome);
        var writes = WritesTo(request.Key);
        var again = await Uploader().UploadAsync(request, CancellationToken.None);
        Assert.True(again.AlreadyComplete);
        Assert.Equal(0, again.PartsUploaded);
        Assert.Equal(bytes, await ReadObjectAsync(request.Key));
        Assert.True(writes == WritesTo(request.Key), $"{writes} writes before, {WritesTo(request.Key)} after: {Describe(request.Key)}");
    }

    [Fact]
    public async Task Listing_shows_every_uploaded_object_with_its_size()
    {
        var (_, a) = await CopyAsync(10, "a.tar", "rfc-list");
        var (_, b) = await CopyAsync(Part + 3, "b.tar", "rfc-list");
        await UntilDoneAsync(() => Uploader(), a);
        await UntilDoneAsync(() => Uploader(), b);
        using var obs = new ObsClient(Microsoft.Extensions.Options.Options.Create(Options));
        var listed = await obs.ListAsync(Bucket, "restore/rfc-list/", CancellationToken.None);
        Assert.Equal(["restore/rfc-list/a.tar", "restore/rfc-list/b.tar"], listed.Select(o => o.Key).Order());
        Assert.Equal([10L, Part + 3], listed.OrderBy(o => o.Key).Select(o => o.Length));
    }
}

/// <summary>Against the emulator's OBS: its rules, its faults, and the wire as it arrived.</summary>
public sealed class EmulatorObsUploaderTests : ObsUploaderTests
{
    private RunningEmulator _emulator = null!;

    protected override string Bucket => "ges-restore-bucket";

    protected override async Task<ObsOptions> StartServerAsync()
    {
        _emulator = await HuaweiCloudEmulator.StartAsync(DemoSeed.Create());
        return new ObsOptions
        {
            Endpoint = new Uri(_emulator.BaseAddress, "obs"),
            Region = DemoSeed.Region,
            AccessKeyId = DemoSeed.AccessKey,
            SecretAccessKey = DemoSeed.SecretKey,
        };
    }

    protected override async Task StopServerAsync() => await _emulator.DisposeAsync();

    [Fact]
    public async Task Over_a_link_capped_per_connection_the_upload_grows_its_sends_while_each_step_pays()
    {
        _emulator.State.Settings.ObsWriteBytesPerSecondPerConnection = 1024 * 1024;
        _emulator.State.Settings.ObsWriteTimeToFirstByteMs = 50;
        (Options.MaxConcurrency, Options.MaxUploadConnections, Options.AdaptInterval) = (2, 8, TimeSpan.FromMilliseconds(300));
        var (bytes, request) = await CopyAsync(Part * 120);
        var result = await Uploader(new CopyOptions { SliceMaxBytes = 0 }, new CopyBufferBudget(32L * 1024 * 1024)).UploadAsync(request, CancellationToken.None);
        Assert.Equal(UploadOutcome.Completed, result.Outcome);
        Assert.Equal(bytes, await ReadObjectAsync(request.Key));

        // 2 → 3 → 4 → 6 → 8 parts at once: each step adds half as many again while the parts read wait for a send.
        Assert.InRange(result.Connections, 4, 8);
    }

    protected override List<int>? AcknowledgedParts(string key) =>
        [.. _emulator.State.Obs.Writes().Where(w => w.Key == key && w.Operation == "UploadPart" && w.Status == 200).Select(w => w.PartNumber!.Value)];

    protected override int? WritesTo(string key) =>
        _emulator.State.Obs.Writes().Count(w => w.Key == key && !w.Operation.StartsWith("Head", StringComparison.Ordinal)
            && !w.Operation.StartsWith("Get", StringComparison.Ordinal) && !w.Operation.StartsWith("List", StringComparison.Ordinal));

    protected override string Describe(string key) =>
        string.Join(", ", _emulator.State.Obs.Writes().Where(w => w.Key == key).Select(w => $"{w.Operation} {w.PartNumber} {w.Status}"));

    [Fact]
    public async Task Every_body_goes_as_is_with_its_content_md5_no_chunked_encoding_no_checksum_trailer()
    {
        var (_, small) = await CopyAsync(1000);
        var (_, large) = await CopyAsync((Part * 3) + 1);
        await UntilDoneAsync(() => Uploader(), small);
        await UntilDoneAsync(() => Uploader(), large);
        var writes = _emulator.State.Obs.Writes();
        var bodies = writes.Where(w => w.Operation is "PutObject" or "UploadPart").ToList();
        Assert.Equal(1 + 4, bodies.Count);
        Assert.All(bodies, w =>
        {
            Assert.True(w.ContentMd5, $"{w.Operation} {w.Key} without Content-MD5");
            Assert.False(w.PayloadHash.StartsWith("STREAMING-", StringComparison.Ordinal), w.PayloadHash);
            Assert.Null(w.ContentEncoding);
            Assert.Empty(w.ChecksumHeaders);
            Assert.Equal(200, w.Status);
        });
        Assert.All(writes, w => Assert.Empty(w.ChecksumHeaders));
        Assert.Contains(writes, w => w.Operation == "CompleteMultipartUpload" && w.Status == 200);
    }

    [Fact]
    public async Task A_part_damaged_in_transit_is_refused_by_its_content_md5_and_sent_again()
    {
        var (bytes, request) = await CopyAsync((Part * 3) + 1);
        _emulator.State.Faults.Add(new FaultSpec { Method = "PUT", Path = "/obs/*", Kind = "corrupt", Offset = 10, Count = 1 });
        var result = await UntilDoneAsync(() => Uploader(), request);
        Assert.Equal(UploadOutcome.Completed, result.Outcome);
        Assert.Contains(_emulator.State.Obs.Writes(), w => w.Status == 400 && w.Operation is "UploadPart");
        Assert.Equal(bytes, _emulator.State.Obs.Objects[(Bucket, request.Key)].ReadAll());
    }

    [Theory]
    [InlineData("status", 500)]
    [InlineData("status", 503)]
    [InlineData("status", 429)]
    [InlineData("drop", 0)]
    public async Task Server_errors_throttling_and_dropped_connections_are_survived(string kind, int status)
    {
        var (bytes, request) = await CopyAsync((Part * 4) + 7);
        _emulator.State.Faults.Add(new FaultSpec { Method = "PUT", Path = "/obs/*", Kind = kind, Status = status, AfterBytes = 5000, Count = 4 });
        var result = await UntilDoneAsync(() => Uploader(), request);
        Assert.Equal(UploadOutcome.Completed, result.Outcome);
        Assert.Equal(bytes, _emulator.State.Obs.Objects[(Bucket, request.Key)].ReadAll());
        Assert.Empty(_emulator.State.Obs.Uploads);
    }

    [Fact]
    public async Task A_damaged_copy_aborts_its_multipart_upload()
    {
        var (_, request) = await CopyAsync((Part * 3) + 1);
        var result = await UntilDoneAsync(() => Uploader(), request with { Sha256Hex = new string('0', 64) });
        Assert.Equal(UploadOutcome.Failed, result.Outcome);
        Assert.Contains("SHA-256", result.FailureReason);
        Assert.Empty(_emulator.State.Obs.Uploads);
        Assert.False(_emulator.State.Obs.Objects.ContainsKey((Bucket, request.Key)));
    }

    [Fact]
    public async Task Wrong_credentials_are_refused_with_obs_codes()
    {
        Options.SecretAccessKey = "wrong-secret";
        using var obs = new ObsClient(Microsoft.Extensions.Options.Options.Create(Options));
        var error = await Assert.ThrowsAsync<ObsException>(() => obs.ListAsync(Bucket, "restore/", CancellationToken.None));
        Assert.False(error.Transient);
        Assert.Contains("SignatureDoesNotMatch", error.Message);
        Assert.DoesNotContain("wrong-secret", error.ToString());
    }
}

/// <summary>Against s3rver, an S3 implementation of its own: the client is not only right for the emulator.</summary>
public sealed class S3rverObsUploaderTests : ObsUploaderTests
{
    private S3rver _server = null!;

    protected override string Bucket => S3rver.Bucket;

    protected override async Task<ObsOptions> StartServerAsync()
    {
        _server = await S3rver.StartAsync();
        return new ObsOptions { Endpoint = _server.Endpoint, Region = "us-east-1", AccessKeyId = S3rver.AccessKey, SecretAccessKey = S3rver.SecretKey };
    }

    protected override async Task StopServerAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task An_unknown_access_key_is_refused()
    {
        // s3rver checks the access key id; its Signature V4 check is unimplemented (the emulator checks signatures).
        Options.AccessKeyId = "NOT-A-KEY";
        using var obs = new ObsClient(Microsoft.Extensions.Options.Options.Create(Options));
        var error = await Assert.ThrowsAsync<ObsException>(() => obs.ListAsync(Bucket, "restore/", CancellationToken.None));
        Assert.False(error.Transient);
        Assert.Contains("InvalidAccessKeyId", error.Message);
    }
}
