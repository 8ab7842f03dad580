using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs.Models;
using BackupRelay.Copying;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Restores;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The way back, end to end on both hosts: a backup copied out to Azure, then restored from that copy
/// into another graph — uploaded from Blob to the emulator's OBS and imported by GES, whose import job
/// checks the files it finds there.
/// </summary>
public abstract class RestoreHarness : PipelineHarness
{
    protected const string Secret = "webhook-secret-for-restores";
    protected const string RestoreBucket = "ges-restore-bucket";

    protected override Dictionary<string, string?> ExtraSettings() => new() { ["Http:WebhookSecret"] = Secret };

    private static readonly object SigningClock = new();
    private static long _lastSignedAt;

    /// <summary>
    /// A signed request; each one signed at a second of its own (the next second when requests come faster
    /// than one a second, within the signature tolerance), as separate deliveries would be: a replayed
    /// signature is refused.
    /// </summary>
    protected static HttpRequestMessage Signed(string path, string body, string? idempotencyKey = null)
    {
        DateTimeOffset signedAt;
        lock (SigningClock)
        {
            _lastSignedAt = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeSeconds(), _lastSignedAt + 1);
            signedAt = DateTimeOffset.FromUnixTimeSeconds(_lastSignedAt);
        }

        var bytes = Encoding.UTF8.GetBytes(body);
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Add("x-functions-key", FunctionKey);
        request.Headers.Add(WebhookSignature.Header, WebhookSignature.Sign(Secret, signedAt, "POST", path, bytes));
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return request;
    }

    /// <summary>Backs up graph A ("orders") now and waits for its verified copy.</summary>
    protected async Task<RunRecord> CopyOutAsync()
    {
        using var response = await Api.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/graphs/{GraphA}/backups")
        {
            Headers = { { "x-functions-key", FunctionKey } },
        });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var run = (await WaitForRunsAsync(1)).Single();
        await AssertCopiedAsync(run, "orders");
        return run;
    }

    /// <summary>
    /// How many times a restore request answered 5xx is sent again, as a webhook sender retries (same
    /// body, same Idempotency-Key, a fresh signature). Zero here: outside a crash test a 5xx is a failure.
    /// </summary>
    protected virtual int ServerErrorRetries => 0;

    /// <summary>Restore requests answered 5xx and sent again (see <see cref="ServerErrorRetries"/>).</summary>
    protected List<string> RetriedRequests { get; } = [];

    protected async Task<(HttpStatusCode Status, JsonNode Body)> RestoreAsync(string backupId, string? key = "restore-1", string graph = GraphB,
        string? extra = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var response = await Api.SendAsync(Signed($"/api/graphs/{graph}/restores",
                $$"""{"backupId":"{{backupId}}","sourceGraph":"orders"{{extra}}}""", key));
            var text = await response.Content.ReadAsStringAsync();
            if ((int)response.StatusCode >= 500 && attempt < ServerErrorRetries)
            {
                RetriedRequests.Add($"{(int)response.StatusCode} '{text}'");
                await Task.Delay(500);
                continue;
            }

            Assert.True(text.Length > 0, $"{(int)response.StatusCode} with an empty body\n{string.Join("\n", Logs.Lines().TakeLast(20))}");
            return (response.StatusCode, JsonNode.Parse(text)!);
        }
    }

    protected async Task<RunRecord> WaitForRunAsync(string runId, TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? TimeSpan.FromSeconds(90));
        while (DateTime.UtcNow < deadline)
        {
            if (await Runs.GetAsync(runId) is { IsFinished: true } run)
            {
                return run;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"run {runId} did not finish: {JsonSerializer.Serialize(await Runs.GetAsync(runId), RunRecordJson.Default.RunRecord)}\n"
            + string.Join("\n", Logs.Lines().TakeLast(30)));
    }

    protected List<Job> ImportJobs() => [.. State.Jobs.Values.Where(j => j.JobType == "ImportBackup")];

    /// <summary>Every file of the copied backup is in OBS under the run's path, byte for byte.</summary>
    protected void AssertInObs(RunRecord copied, RunRecord restore)
    {
        var backup = State.Backups.Single(b => b.Id == copied.BackupId);
        var (bucket, prefix) = UploadToObsHandler.SplitObsPath(restore.ImportPath!);
        Assert.Equal(RestoreBucket, bucket);
        Assert.Equal($"backuprelay-restores/orders/{copied.BackupId}/", prefix);
        lock (State.Sync)
        {
            foreach (var file in backup.Files)
            {
                var expected = new byte[file.Size];
                BackupContent.Fill(BackupContent.Seed(backup.Id, file.Name), 0, expected);
                Assert.True(State.Obs.Objects.TryGetValue((bucket, prefix + file.Name), out var stored), $"{file.Name} is not in OBS");
                Assert.Equal(expected, stored!.ReadAll());
            }
        }
    }

}

public sealed class RestoreFromCopyTests : RestoreHarness
{
    [Fact]
    public async Task A_copy_comes_back_through_obs_and_ges_imports_it_once()
    {
        var copied = await CopyOutAsync();
        var (status, body) = await RestoreAsync(copied.BackupId!);
        Assert.Equal(HttpStatusCode.Accepted, status);
        var runId = body["id"]!.GetValue<string>();
        Assert.StartsWith("rfc-", runId, StringComparison.Ordinal);
        Assert.Equal("restore-from-copy", body["kind"]!.GetValue<string>());

        // The same request again (a webhook retry): the same run.
        var (again, againBody) = await RestoreAsync(copied.BackupId!);
        Assert.Equal(HttpStatusCode.Accepted, again);
        Assert.Equal(runId, againBody["id"]!.GetValue<string>());

        var run = await WaitForRunAsync(runId);
        Assert.True(run.Status == RunStatus.Succeeded, string.Join("; ", run.Errors.Select(e => $"{e.Step}: {e.Reason}")));
        Assert.Equal(RunStep.Done, run.Step);
        Assert.All(run.Files, f =>
        {
            Assert.Equal(RunFileStatus.Completed, f.Status);
            Assert.Equal(f.Size, f.BytesCopied);
            Assert.Equal("run-record", f.Verification);
        });
        AssertInObs(copied, run);

        var job = Assert.Single(ImportJobs());
        Assert.Equal(job.Id, run.JobId);
        Assert.Equal("success", job.Status);
        Assert.Equal(GraphB, job.GraphId);
        Assert.Equal(copied.BackupId, job.Detail!["source_backup_id"]);
        Assert.Equal(job.Detail["backup_id"], run.ImportedBackupId);
        Assert.Single(State.Backups, b => b.GraphId == GraphB && b.BackupMethod == "import" && b.Id == run.ImportedBackupId);

        // No credential, signature or signed link in the logs or the run record.
        var record = JsonSerializer.Serialize(run, RunRecordJson.Default.RunRecord);
        foreach (var secret in new[] { DemoSeed.SecretKey, DemoSeed.Password, "Signature=", "Credential=", "X-Amz-Signature", "AccessKeyId=", Secret })
        {
            Assert.DoesNotContain(secret, Logs.All(), StringComparison.Ordinal);
            Assert.DoesNotContain(secret, record, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task No_copy_an_unverified_file_or_a_missing_file_is_409_and_nothing_is_uploaded()
    {
        var (status, body) = await RestoreAsync("0123456789abcdef0123456789abcdef", "none");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("manifest.json does not exist", body["detail"]!.GetValue<string>());

        var copied = await CopyOutAsync();
        var backup = State.Backups.Single(b => b.Id == copied.BackupId);
        var first = Destination.GetBlobClient($"orders/{copied.BackupId}/{backup.Files[0].Name}");
        var metadata = (await first.GetPropertiesAsync()).Value.Metadata;
        metadata[CopyMetadata.Verified] = "false";
        await first.SetMetadataAsync(metadata);
        (status, body) = await RestoreAsync(copied.BackupId!, "unverified");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains($"{backup.Files[0].Name} is not marked verified", body["detail"]!.GetValue<string>());

        await Destination.GetBlobClient($"orders/{copied.BackupId}/{backup.Files[1].Name}").DeleteAsync();
        metadata[CopyMetadata.Verified] = "true";
        await first.SetMetadataAsync(metadata);
        (status, body) = await RestoreAsync(copied.BackupId!, "missing");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains($"{backup.Files[1].Name} is missing", body["detail"]!.GetValue<string>());

        // A copy the lifecycle moved to the Archive tier cannot be read until it is rehydrated.
        await Destination.GetBlobClient($"orders/{copied.BackupId}/{backup.Files[0].Name}").SetAccessTierAsync(Azure.Storage.Blobs.Models.AccessTier.Archive);
        (status, body) = await RestoreAsync(copied.BackupId!, "archived");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains($"{backup.Files[0].Name} is in the Archive tier", body["detail"]!.GetValue<string>());

        Assert.Empty(State.Obs.Writes());
        Assert.Single(await Runs.ListAsync());
    }

    [Fact]
    public async Task A_copy_never_checked_against_the_source_is_restored_only_when_the_request_accepts_it()
    {
        var copied = await CopyOutAsync();
        var backup = State.Backups.Single(b => b.Id == copied.BackupId);
        var first = Destination.GetBlobClient($"orders/{copied.BackupId}/{backup.Files[0].Name}");
        var metadata = (await first.GetPropertiesAsync()).Value.Metadata;
        metadata[CopyMetadata.Verified] = BlobCopyDestination.VerifiedReceivedOnly;
        metadata[CopyMetadata.Verification] = Verification.ReceivedOnly;
        await first.SetMetadataAsync(metadata);

        var (status, body) = await RestoreAsync(copied.BackupId!, "received-only");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains($"{backup.Files[0].Name} was stored as received but never checked against the source", body["detail"]!.GetValue<string>());
        Assert.Empty(State.Obs.Writes());

        (status, body) = await RestoreAsync(copied.BackupId!, "received-only-accepted", extra: ""","acceptUnverified":true""");
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal(RunStatus.Succeeded, (await WaitForRunAsync(body["id"]!.GetValue<string>())).Status);
    }

    [Fact]
    public async Task A_copy_rewritten_bytes_metadata_and_manifest_alike_is_refused_against_the_run_that_made_it()
    {
        var copied = await CopyOutAsync();
        var backup = State.Backups.Single(b => b.Id == copied.BackupId);
        var target = backup.Files.First(f => f.Size > 0);

        // Whoever can write to the destination replaces a file and makes everything there agree with it.
        var forged = Encoding.UTF8.GetBytes("not the graph that was backed up");
        var md5 = System.Security.Cryptography.MD5.HashData(forged);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(forged));
        var blob = Destination.GetBlobClient($"orders/{copied.BackupId}/{target.Name}");
        var metadata = (await blob.GetPropertiesAsync()).Value.Metadata;
        metadata[CopyMetadata.Md5] = Convert.ToHexStringLower(md5);
        metadata[CopyMetadata.Sha256] = sha;
        metadata[CopyMetadata.Length] = forged.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await blob.UploadAsync(new BinaryData(forged), new BlobUploadOptions { Metadata = metadata, HttpHeaders = new BlobHttpHeaders { ContentHash = md5 } });
        var manifestBlob = Destination.GetBlobClient($"orders/{copied.BackupId}/manifest.json");
        var manifest = JsonNode.Parse((await manifestBlob.DownloadContentAsync()).Value.Content.ToString())!;
        var entry = manifest["files"]!.AsArray().Single(f => f!["name"]!.GetValue<string>() == target.Name)!;
        entry["size"] = forged.Length;
        entry["md5"] = Convert.ToHexStringLower(md5);
        entry["sha256"] = sha;
        await manifestBlob.UploadAsync(BinaryData.FromString(manifest.ToJsonString()), overwrite: true);

        var (status, body) = await RestoreAsync(copied.BackupId!, "forged");
        Assert.Equal(HttpStatusCode.Conflict, status);
        var detail = body["detail"]!.GetValue<string>();
        Assert.Contains($"{target.Name} in the manifest", detail, StringComparison.Ordinal);
        Assert.Contains($"does not match what run {copied.Id} recorded when it made the copy", detail, StringComparison.Ordinal);
        Assert.Empty(State.Obs.Writes());
        Assert.Single(await Runs.ListAsync());
    }

    /// <summary>Rewrites one file of the copy with bytes of the same length, and its metadata and the manifest to agree with them.</summary>
    private async Task<JsonNode> ForgeSameLengthAsync(RunRecord copied, string runIdInManifest)
    {
        var backup = State.Backups.Single(b => b.Id == copied.BackupId);
        var target = backup.Files.First(f => f.Size > 0);
        var blob = Destination.GetBlobClient($"orders/{copied.BackupId}/{target.Name}");
        var forged = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        forged[forged.Length / 2] ^= 0x01;
        var md5 = System.Security.Cryptography.MD5.HashData(forged);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(forged));
        var metadata = (await blob.GetPropertiesAsync()).Value.Metadata;
        metadata[CopyMetadata.Md5] = Convert.ToHexStringLower(md5);
        metadata[CopyMetadata.Sha256] = sha;
        await blob.UploadAsync(new BinaryData(forged), new BlobUploadOptions { Metadata = metadata, HttpHeaders = new BlobHttpHeaders { ContentHash = md5 } });
        var manifestBlob = Destination.GetBlobClient($"orders/{copied.BackupId}/manifest.json");
        var manifest = JsonNode.Parse((await manifestBlob.DownloadContentAsync()).Value.Content.ToString())!;
        var entry = manifest["files"]!.AsArray().Single(f => f!["name"]!.GetValue<string>() == target.Name)!;
        Assert.Equal(forged.Length, entry["size"]!.GetValue<long>());
        entry["md5"] = Convert.ToHexStringLower(md5);
        entry["sha256"] = sha;
        manifest["runId"] = runIdInManifest;
        await manifestBlob.UploadAsync(BinaryData.FromString(manifest.ToJsonString()), overwrite: true);
        return manifest;
    }

    [Fact]
    public async Task A_same_length_forgery_is_refused_against_the_run_that_made_the_copy()
    {
        var copied = await CopyOutAsync();
        await ForgeSameLengthAsync(copied, copied.Id);
        var (status, body) = await RestoreAsync(copied.BackupId!, "same-length", extra: ""","acceptUnverified":true""");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("the copy was changed after it was made", body["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(State.Obs.Writes());
    }

    [Fact]
    public async Task A_restore_run_never_vouches_for_a_copy_even_one_that_recorded_its_forged_hashes()
    {
        var copied = await CopyOutAsync();

        // The forger points the manifest at no record and restores "on the manifest's word": that restore's own
        // record now holds the forged hashes, every file completed.
        await ForgeSameLengthAsync(copied, "rfc-no-such-run");
        var (status, body) = await RestoreAsync(copied.BackupId!, "launder", extra: ""","acceptUnverified":true""");
        Assert.Equal(HttpStatusCode.Accepted, status);
        var laundering = await WaitForRunAsync(body["id"]!.GetValue<string>());
        Assert.All(laundering.Files, f => Assert.Equal(RunFileStatus.Completed, f.Status));

        // Then points the manifest at that restore run: it is not the run that made the copy, whatever it accepts.
        await ForgeSameLengthAsync(copied, laundering.Id);
        foreach (var (key, extra) in new[] { ("plain", (string?)null), ("accepting", ""","acceptUnverified":true,"acceptIncomplete":true""") })
        {
            (status, body) = await RestoreAsync(copied.BackupId!, key, extra: extra);
            Assert.Equal(HttpStatusCode.Conflict, status);
            Assert.Contains($"names run {laundering.Id}, which cannot vouch for this copy: it is a restore-from-copy run", body["detail"]!.GetValue<string>(),
                StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_incomplete_copy_is_refused_naming_what_is_missing_unless_the_request_accepts_it()
    {
        var copied = await CopyOutAsync();
        var missing = copied.Files[^1].Name;

        // The run that made the copy lost a file (as a source that went away mid-run leaves it), and a manifest of
        // what it has sits in the destination.
        var runsContainer = Storage.GetContainer(BackupRelay.Configuration.QueueNames.RunsContainer);
        var record = (await Runs.GetAsync(copied.Id))!;
        record.Files[^1].Status = RunFileStatus.Failed;
        record.Status = RunStatus.PartiallyFailed;
        record.Copy = CopyTrust.Decide(record);
        await runsContainer.GetBlobClient($"runs/{copied.Id}.json").UploadAsync(BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(record, RunRecordJson.Default.RunRecord)), overwrite: true);
        var manifestBlob = Destination.GetBlobClient($"orders/{copied.BackupId}/manifest.json");
        var manifest = JsonNode.Parse((await manifestBlob.DownloadContentAsync()).Value.Content.ToString())!;
        var files = manifest["files"]!.AsArray();
        files.Remove(files.Single(f => f!["name"]!.GetValue<string>() == missing));
        await manifestBlob.UploadAsync(BinaryData.FromString(manifest.ToJsonString()), overwrite: true);

        var (status, body) = await RestoreAsync(copied.BackupId!, "incomplete", extra: ""","acceptUnverified":true""");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains($"is incomplete: run {copied.Id} ended PartiallyFailed and did not copy {missing}", body["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(State.Obs.Writes());

        (status, body) = await RestoreAsync(copied.BackupId!, "incomplete-accepted", extra: ""","acceptIncomplete":true""");
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal("incomplete", body["restoredLevel"]!.GetValue<string>());
        Assert.Equal(files.Count, body["files"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_copy_whose_run_record_is_gone_is_restored_on_the_manifests_word_only_when_the_request_accepts_it()
    {
        var copied = await CopyOutAsync();
        await Storage.GetContainer(BackupRelay.Configuration.QueueNames.RunsContainer).GetBlobClient($"runs/{copied.Id}.json").DeleteAsync();

        var (status, body) = await RestoreAsync(copied.BackupId!, "no-record");
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains($"names run {copied.Id} as the one that made the copy, and there is no readable record", body["detail"]!.GetValue<string>(),
            StringComparison.Ordinal);
        Assert.Empty(State.Obs.Writes());

        (status, body) = await RestoreAsync(copied.BackupId!, "no-record-accepted", extra: ""","acceptUnverified":true""");
        Assert.Equal(HttpStatusCode.Accepted, status);
        var run = await WaitForRunAsync(body["id"]!.GetValue<string>());
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.All(run.Files, f => Assert.Equal("manifest", f.Verification));
    }

    [Fact]
    public async Task A_corrupted_blob_fails_the_run_naming_the_file_and_ges_import_is_never_called()
    {
        var copied = await CopyOutAsync();
        var backup = State.Backups.Single(b => b.Id == copied.BackupId);
        var damaged = backup.Files.First(f => f.Size > 0);
        var blob = Destination.GetBlobClient($"orders/{copied.BackupId}/{damaged.Name}");
        var properties = (await blob.GetPropertiesAsync()).Value;
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        bytes[bytes.Length / 2] ^= 0x40;

        // The bytes change under the recorded hashes, as bit rot or a mistaken write would.
        await blob.UploadAsync(new BinaryData(bytes), new BlobUploadOptions { Metadata = properties.Metadata });

        var (status, body) = await RestoreAsync(copied.BackupId!);
        Assert.Equal(HttpStatusCode.Accepted, status);
        var run = await WaitForRunAsync(body["id"]!.GetValue<string>());
        Assert.Equal(RunStatus.Failed, run.Status);
        var error = Assert.Single(run.Errors);
        Assert.Equal("uploading", error.Step);
        Assert.Contains(damaged.Name, error.Reason);
        Assert.Contains("does not match its manifest", error.Reason);
        Assert.Equal(RunFileStatus.Failed, run.Files.Single(f => f.Name == damaged.Name).Status);
        Assert.Empty(ImportJobs());
        Assert.DoesNotContain(State.RecordedRequests(), r => r.Path.EndsWith("/backups/import", StringComparison.Ordinal));
        lock (State.Sync)
        {
            Assert.DoesNotContain(State.Obs.Objects.Keys, k => k.Key.EndsWith(damaged.Name, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Obs_errors_throttling_and_dropped_connections_are_survived()
    {
        var copied = await CopyOutAsync();
        State.Faults.Add(new FaultSpec { Method = "PUT", Path = "/obs/*", Kind = "status", Status = 500, Count = 3 });
        State.Faults.Add(new FaultSpec { Method = "POST", Path = "/obs/*", Kind = "status", Status = 503, Count = 2 });
        State.Faults.Add(new FaultSpec { Method = "PUT", Path = "/obs/*", Kind = "status", Status = 429, Count = 2 });
        State.Faults.Add(new FaultSpec { Method = "PUT", Path = "/obs/*", Kind = "drop", AfterBytes = 4096, Count = 2 });
        var (_, body) = await RestoreAsync(copied.BackupId!);
        var run = await WaitForRunAsync(body["id"]!.GetValue<string>());
        Assert.True(run.Status == RunStatus.Succeeded, string.Join("; ", run.Errors.Select(e => e.Reason)));
        AssertInObs(copied, run);
        Assert.Single(ImportJobs());
        Assert.Empty(State.Faults.List()); // every fault was met
        Assert.True(State.RecordedRequests().Count(r => r.Path.StartsWith("/obs/", StringComparison.Ordinal) && r.Status is 500 or 503 or 429) >= 5);
    }

    [Fact]
    public async Task An_import_accepted_but_whose_answer_was_lost_is_adopted_not_started_again()
    {
        var copied = await CopyOutAsync();
        State.Faults.Add(new FaultSpec { Method = "POST", Path = "*/backups/import", Kind = "lostResponse", Status = 502 });
        var (_, body) = await RestoreAsync(copied.BackupId!);
        var run = await WaitForRunAsync(body["id"]!.GetValue<string>());
        Assert.True(run.Status == RunStatus.Succeeded, string.Join("; ", run.Errors.Select(e => e.Reason)));
        var job = Assert.Single(ImportJobs());
        Assert.Equal(job.Id, run.JobId);
        Assert.Single(State.RecordedRequests(), r => r.Method == "POST" && r.Path.EndsWith("/backups/import", StringComparison.Ordinal));
        Assert.Contains(Logs.Lines(), l => l.Contains("adopted job", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_import_job_that_fails_fails_the_run_with_the_ges_reason()
    {
        var copied = await CopyOutAsync();
        State.Faults.Add(new FaultSpec { Method = "POST", Path = "*/backups/import", Kind = "failJob", Reason = "The graph is too small for this backup." });
        var (_, body) = await RestoreAsync(copied.BackupId!);
        var run = await WaitForRunAsync(body["id"]!.GetValue<string>());
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal("importing", Assert.Single(run.Errors).Step);
        Assert.Contains("The graph is too small for this backup.", run.Errors[0].Reason);
    }

    [Fact]
    public async Task The_same_idempotency_key_with_another_request_is_422_naming_the_key_and_the_first_run_goes_on()
    {
        var copied = await CopyOutAsync();
        var (first, firstBody) = await RestoreAsync(copied.BackupId!, key: "reused-key");
        Assert.Equal(HttpStatusCode.Accepted, first);
        var (again, againBody) = await RestoreAsync(copied.BackupId!, key: "reused-key");
        Assert.Equal(HttpStatusCode.Accepted, again);
        Assert.Equal(firstBody["id"]!.GetValue<string>(), againBody["id"]!.GetValue<string>());

        var (other, problem) = await RestoreAsync(copied.BackupId!, key: "reused-key", extra: ""","obsPath":"obs://another-bucket/elsewhere/" """);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, other);
        Assert.Equal("Idempotency-Key", problem["field"]!.GetValue<string>());
        Assert.Equal(firstBody["id"]!.GetValue<string>(), problem["runId"]!.GetValue<string>());
        var run = await WaitForRunAsync(firstBody["id"]!.GetValue<string>(), TimeSpan.FromSeconds(90));
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal($"{RestoreBucket}/backuprelay-restores/orders/{copied.BackupId}/", run.ImportPath);
    }

    [Fact]
    public async Task A_restore_without_source_graph_finds_the_graphs_copies_where_they_were_written()
    {
        // Graph A has no configured Name: its copies are under its GES name ("orders"), and so is where a
        // restore of graph A looks when the request names no source graph.
        var copied = await CopyOutAsync();
        using var response = await Api.SendAsync(Signed($"/api/graphs/{GraphA}/restores", $$"""{"backupId":"{{copied.BackupId}}"}"""));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var run = await WaitForRunAsync(body["id"]!.GetValue<string>());
        Assert.True(run.Status == RunStatus.Succeeded, string.Join("; ", run.Errors.Select(e => e.Reason)));
        Assert.Equal("orders", run.SourceGraph);
        AssertInObs(copied, run);
    }

    [Fact]
    public async Task A_second_restore_into_a_graph_while_one_runs_is_409_naming_it_and_is_accepted_after()
    {
        var copied = await CopyOutAsync();

        // Uploads take a while: the first restore is still running when the second arrives.
        State.Faults.Add(new FaultSpec { Method = "PUT", Path = $"/obs/{RestoreBucket}/*", Kind = "latency", DelayMs = 1500, Count = 1 });
        var (first, firstBody) = await RestoreAsync(copied.BackupId!, key: "first");
        Assert.Equal(HttpStatusCode.Accepted, first);
        var firstId = firstBody["id"]!.GetValue<string>();
        var (second, problem) = await RestoreAsync(copied.BackupId!, key: "second");
        Assert.Equal(HttpStatusCode.Conflict, second);
        Assert.Equal(firstId, problem["runId"]!.GetValue<string>());
        Assert.Contains(firstId, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Single(await Runs.ListAsync(), r => r.Kind == RunKind.RestoreFromCopy);

        // Once it has ended, the graph takes the next restore.
        Assert.Equal(RunStatus.Succeeded, (await WaitForRunAsync(firstId)).Status);
        var (third, thirdBody) = await RestoreAsync(copied.BackupId!, key: "third");
        Assert.Equal(HttpStatusCode.Accepted, third);
        Assert.Equal(RunStatus.Succeeded, (await WaitForRunAsync(thirdBody["id"]!.GetValue<string>())).Status);
        Assert.Equal(2, ImportJobs().Count);
    }

    [Fact]
    public async Task A_graph_busy_when_the_import_starts_is_asked_again_not_failed()
    {
        var copied = await CopyOutAsync();

        // Graph B is in a passing state (GES answers GES.7001 "not running") for the first seconds.
        lock (State.Sync)
        {
            State.Graphs[GraphB].Status = "904";
        }

        var (status, body) = await RestoreAsync(copied.BackupId!, "busy-graph");
        Assert.Equal(HttpStatusCode.Accepted, status);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!State.RecordedRequests().Any(r => r.Path.EndsWith("/backups/import", StringComparison.Ordinal) && r.Status == 400))
        {
            Assert.True(DateTime.UtcNow < deadline, "the import was never tried while the graph was busy");
            await Task.Delay(50);
        }

        lock (State.Sync)
        {
            State.Graphs[GraphB].Status = "200";
        }

        var run = await WaitForRunAsync(body["id"]!.GetValue<string>());
        Assert.True(run.Status == RunStatus.Succeeded, string.Join("; ", run.Errors.Select(e => e.Reason)));
        Assert.Single(ImportJobs());
    }
}

/// <summary>
/// The worker is killed after each step of the copy out and the way back (once per function), and once
/// more in the middle of an upload to OBS: the import still happens once, with byte-exact objects.
/// </summary>
public sealed class RestoreFromCopyCrashTests : RestoreHarness
{
    private readonly WorkerKiller _killer = new(perFunction: 1);

    public RestoreFromCopyCrashTests() => KillWorkerBeforeAnswer = _killer.ShouldKill;

    /// <summary>
    /// A kill can land while the restore request itself is with the worker; the host then answers 5xx
    /// with no body, and the webhook sender sends it again under the same key, which the API makes safe.
    /// </summary>
    protected override int ServerErrorRetries => 3;

    [Fact]
    public async Task A_crash_after_any_step_or_mid_upload_still_imports_once_with_byte_exact_objects()
    {
        var copied = await CopyOutAsync();

        // The first parts sent to OBS take 3 s to answer: the worker is killed while an upload runs. More
        // than one is slow because a kill of another function (the killer above) can take the first slow
        // PUT down with it, and a redelivered upload that answers at once is over before it can be caught.
        State.Faults.Add(new FaultSpec { Method = "PUT", Path = $"/obs/{RestoreBucket}/*", Kind = "latency", DelayMs = 3000, Count = 4 });
        using var runEnded = new CancellationTokenSource();
        var killedMidUpload = KillMidUploadAsync(runEnded.Token);
        var (status, body) = await RestoreAsync(copied.BackupId!);
        Assert.True(status == HttpStatusCode.Accepted, $"{(int)status}; sent again after: {string.Join(", ", RetriedRequests)}");
        var run = await WaitForRunAsync(body["id"]!.GetValue<string>(), TimeSpan.FromSeconds(120));
        await runEnded.CancelAsync();
        Assert.True(run.Status == RunStatus.Succeeded, string.Join("; ", run.Errors.Select(e => e.Reason)));
        AssertInObs(copied, run);
        Assert.Single(ImportJobs());
        Assert.Single(State.RecordedRequests(), r => r.Method == "POST" && r.Path.EndsWith("/backups/import", StringComparison.Ordinal) && r.Status == 200);
        foreach (var function in new[] { FunctionNames.StartBackup, FunctionNames.PollBackupJob, FunctionNames.CopyBackupFile, FunctionNames.PollOperation })
        {
            Assert.True(_killer.Kills(function) == 1, $"{function} was killed {_killer.Kills(function)} times, not once");
        }

        Assert.True(await killedMidUpload, "the worker was never killed mid-upload");
    }

    /// <summary>Kills the worker once, half a second into an UploadToObs invocation; gives up when the run ends.</summary>
    private async Task<bool> KillMidUploadAsync(CancellationToken runEnded)
    {
        var deadline = DateTime.UtcNow.AddSeconds(180);
        while (!runEnded.IsCancellationRequested && DateTime.UtcNow < deadline)
        {
            if (LocalHost.InFlight(FunctionNames.UploadToObs) > 0)
            {
                await Task.Delay(500);
                if (LocalHost.InFlight(FunctionNames.UploadToObs) > 0 && LocalHost.Worker is { } worker)
                {
                    await worker.KillAsync();
                    return true;
                }
            }

            await Task.Delay(20);
        }

        return false;
    }
}
