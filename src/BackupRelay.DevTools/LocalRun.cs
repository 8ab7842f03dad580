using System.Globalization;
using System.Text.Json;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Storage;
using Azure.Storage.Blobs;

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

            ok &= run.Status == RunStatus.Succeeded;
            foreach (var file in run.Files)
            {
                var path = $"{run.GraphName ?? run.GraphId}/{run.BackupId}/{file.Name}";
                var verified = await VerifyAsync(destination, path, run.BackupId!, file);
                ok &= verified;
                Console.WriteLine($"  {destination.Name}/{path}  {file.Size} bytes  md5 {file.Md5}  sha256 {file.Sha256}  {(verified ? "verified" : "NOT VERIFIED")}");
            }

            var manifest = destination.GetBlobClient($"{run.GraphName ?? run.GraphId}/{run.BackupId}/{CopyBackupFileHandler.ManifestName}");
            if (await manifest.ExistsAsync())
            {
                var content = (await manifest.DownloadContentAsync()).Value.Content;
                var parsed = JsonSerializer.Deserialize(content.ToMemory().Span, BackupRelayJson.Default.BackupManifest)!;
                Console.WriteLine($"  {destination.Name}/{run.GraphName ?? run.GraphId}/{run.BackupId}/{CopyBackupFileHandler.ManifestName}  ({parsed.Files.Count} files)");
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
            && Convert.ToHexStringLower(md5) == file.Md5 && properties.Metadata.TryGetValue(CopyMetadata.Verified, out var verified) && verified == "true";
    }
}
