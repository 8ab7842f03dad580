using System.Globalization;
using System.Text.Json;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Storage;
using Azure.Storage.Blobs;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace BackupRelay.DevTools;

/// <summary>Follows the local run: shows each run's step and bytes as they change, then checks what landed.</summary>
internal static class LocalRun
{
    public static async Task<int> WatchAsync(IReadOnlyDictionary<string, string> arguments)
    {
        var account = StorageAccount.FromConnectionString(arguments["storage"]);
        var runs = new RunStore(account.GetContainer(BackupRelay.Configuration.QueueNames.RunsContainer));
        var destination = account.GetContainer(arguments["container"]);
        var timeout = TimeSpan.FromSeconds(double.Parse(arguments.GetValueOrDefault("timeout", "300"), CultureInfo.InvariantCulture));
        var deadline = DateTime.UtcNow + timeout;
        var last = "";
        List<RunRecord> current = [];
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                current = await runs.ListAsync();
            }
            catch (Azure.RequestFailedException)
            {
                current = [];
            }

            var line = string.Join(" | ", current.Select(Describe));
            if (line != last && line.Length > 0)
            {
                Console.WriteLine($"{DateTime.UtcNow:HH:mm:ss} {line}");
                last = line;
            }

            if (current.Count > 0 && current.All(r => r.IsFinished))
            {
                break;
            }

            await Task.Delay(500);
        }

        if (current.Count == 0 || !current.All(r => r.IsFinished))
        {
            Console.WriteLine($"The run did not finish within {timeout}.");
            return 1;
        }

        var ok = true;
        foreach (var run in current)
        {
            Console.WriteLine();
            Console.WriteLine($"Run {run.Id}: {run.Status} (graph {run.GraphName ?? run.GraphId}, backup {run.BackupId}, job {run.JobId})");
            foreach (var error in run.Errors)
            {
                Console.WriteLine($"  error at {error.Step}: {error.Reason}");
            }

            // What the copy proves, as the run record decided it (verified, received-only or incomplete).
            Console.WriteLine($"  copy: {run.Trust?.Summary ?? "none"}");
            ok &= run.Status == RunStatus.Succeeded && run.Trust?.IsVerified == true;
            var folder = CopyPaths.Folder(new BackupRelay.Configuration.BackupOptions(), run.GraphId, run.GraphName);
            foreach (var file in run.Files)
            {
                var path = CopyPaths.File(folder, run.BackupId!, file.Name);
                var verified = await VerifyAsync(destination, path, run.BackupId!, file);
                ok &= verified;
                Console.WriteLine($"  {destination.Name}/{path}  {file.Size} bytes  md5 {file.Md5 ?? "-"}  sha256 {file.Sha256}  {(verified ? $"verified ({file.Verification})" : "NOT VERIFIED")}");
            }

            var manifest = destination.GetBlobClient(CopyPaths.File(folder, run.BackupId!, CopyBackupFileHandler.ManifestName));
            if (await manifest.ExistsAsync())
            {
                var content = (await manifest.DownloadContentAsync()).Value.Content;
                var parsed = JsonSerializer.Deserialize(content.ToMemory().Span, BackupRelayJson.Default.BackupManifest)!;
                Console.WriteLine($"  {destination.Name}/{CopyPaths.File(folder, run.BackupId!, CopyBackupFileHandler.ManifestName)}  ({parsed.Files.Count} files)");
            }
            else
            {
                ok = false;
                Console.WriteLine("  manifest.json is missing");
            }
        }

        Console.WriteLine();
        Console.WriteLine(ok ? "Backup copied and verified." : "Backup NOT copied completely.");
        return ok ? 0 : 1;
    }

    /// <summary>
    /// The way back: restores the backup the local run copied into another graph through
    /// <c>POST /api/graphs/{graph}/restores</c> (Blob → OBS → GES import), follows the run, and checks
    /// the objects that reached the emulator's OBS against the original backup's bytes.
    /// </summary>
    public static async Task<int> RestoreAsync(IReadOnlyDictionary<string, string> arguments)
    {
        var account = StorageAccount.FromConnectionString(arguments["storage"]);
        var runs = new RunStore(account.GetContainer(BackupRelay.Configuration.QueueNames.RunsContainer));
        var copied = (await runs.ListAsync()).FirstOrDefault(r => r.Kind == RunKind.Backup && r.Status == RunStatus.Succeeded);
        if (copied is null)
        {
            Console.WriteLine("No copied backup to restore.");
            return 1;
        }

        var graph = arguments["graph"];
        using var api = new HttpClient { BaseAddress = new Uri(arguments["api"]) };
        if (arguments.TryGetValue("key", out var key))
        {
            api.DefaultRequestHeaders.Add("x-functions-key", key);
        }
        Console.WriteLine($"Restoring backup {copied.BackupId} of {copied.GraphName} from its copy in Azure into graph {graph} (Blob → OBS → GES import)");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/graphs/{graph}/restores")
        {
            Content = JsonContent.Create(new JsonObject { ["backupId"] = copied.BackupId, ["sourceGraph"] = copied.GraphName }),
        };
        // The demo's restore is one run however often it is asked for; another key asks for another restore.
        request.Headers.Add("Idempotency-Key", arguments.TryGetValue("idempotency-key", out var idempotencyKey) ? idempotencyKey : "local-demo-" + copied.Id);
        using var accepted = await api.SendAsync(request);
        var body = await accepted.Content.ReadAsStringAsync();
        if (accepted.StatusCode != System.Net.HttpStatusCode.Accepted)
        {
            Console.WriteLine($"The restore was refused: {(int)accepted.StatusCode} {body}");
            return 1;
        }

        var runId = JsonNode.Parse(body)!["id"]!.GetValue<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(double.Parse(arguments.GetValueOrDefault("timeout", "300"), CultureInfo.InvariantCulture));
        RunRecord? run = null;
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            run = await runs.GetAsync(runId);
            var line = run is null ? "" : Describe(run);
            if (line != last && line.Length > 0)
            {
                Console.WriteLine($"{DateTime.UtcNow:HH:mm:ss} {line}");
                last = line;
            }

            if (run is { IsFinished: true })
            {
                break;
            }

            await Task.Delay(500);
        }

        if (run is not { IsFinished: true })
        {
            Console.WriteLine("The restore did not finish in time.");
            return 1;
        }

        Console.WriteLine();
        Console.WriteLine($"Restore run {run.Id}: {run.Status}; GES import job {run.JobId ?? "(none)"} "
            + (run.Status == RunStatus.Succeeded ? $"succeeded: graph {graph} has imported backup {run.ImportedBackupId}" : "did not succeed"));
        foreach (var error in run.Errors)
        {
            Console.WriteLine($"  error at {error.Step}: {error.Reason}");
        }

        var ok = run.Status == RunStatus.Succeeded;
        var (bucket, prefix) = BackupRelay.Restores.UploadToObsHandler.SplitObsPath(run.ImportPath!);
        using var s3 = new Amazon.S3.AmazonS3Client(new Amazon.Runtime.BasicAWSCredentials(DemoSeed.AccessKey, DemoSeed.SecretKey), new Amazon.S3.AmazonS3Config
        {
            ServiceURL = arguments["obs"],
            AuthenticationRegion = DemoSeed.Region,
            ForcePathStyle = true,
            UseHttp = true,
        });
        foreach (var file in run.Files)
        {
            var good = false;
            try
            {
                using var get = await s3.GetObjectAsync(bucket, prefix + file.Name);
                var (md5, _, length) = await FileHashes.OfStreamAsync(get.ResponseStream, CancellationToken.None);
                var (want, _) = BackupContent.Hashes(BackupContent.Seed(copied.BackupId!, file.Name), file.Size ?? 0);
                good = length == file.Size && md5.AsSpan().SequenceEqual(want);
            }
            catch (Amazon.S3.AmazonS3Exception)
            {
            }

            ok &= good;
            Console.WriteLine($"  obs://{bucket}/{prefix}{file.Name}  {file.Size} bytes  {(good ? "equal to the original backup" : "NOT EQUAL to the original backup")}");
        }

        Console.WriteLine();
        Console.WriteLine(ok ? "Backup restored from its copy and imported." : "Backup NOT restored.");
        return ok ? 0 : 1;
    }

    private static string Describe(RunRecord run)
    {
        var copied = run.Files.Sum(f => f.BytesCopied);
        var total = run.Files.Sum(f => f.Size ?? (f.SizeKb ?? 0) * 1024);
        var files = run.Files.Count == 0 ? "" : $" {run.Files.Count(f => f.Status == RunFileStatus.Completed)}/{run.Files.Count} files, {copied / 1048576.0:F1}/{total / 1048576.0:F1} MiB";
        return $"{run.Id}: {run.Status} {run.Step}{files}";
    }

    /// <summary>Reads the copy back and checks it against the emulator's deterministic bytes and the recorded hashes.</summary>
    private static async Task<bool> VerifyAsync(BlobContainerClient destination, string path, string backupId, RunFile file)
    {
        var blob = destination.GetBlobClient(path);
        if (file.Size is null || !await blob.ExistsAsync())
        {
            return false;
        }

        var properties = (await blob.GetPropertiesAsync()).Value;
        await using var stream = (await blob.DownloadStreamingAsync()).Value.Content;
        var (md5, sha, length) = await FileHashes.OfStreamAsync(stream, CancellationToken.None);
        var (wantMd5, wantSha) = BackupContent.Hashes(BackupContent.Seed(backupId, file.Name), file.Size.Value);
        return length == file.Size && md5.AsSpan().SequenceEqual(wantMd5) && sha.AsSpan().SequenceEqual(wantSha)
            && (file.Md5 is null || Convert.ToHexStringLower(md5) == file.Md5) && Convert.ToHexStringLower(sha) == file.Sha256 && properties.Metadata.TryGetValue(CopyMetadata.Verified, out var verified) && verified == "true";
    }
}
