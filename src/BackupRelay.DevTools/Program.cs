using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Emulator;
using Azure.Storage;
using Azure.Storage.Sas;
using BackupRelay.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

// The pieces build/benchmark.sh times one by one, each in its own process:
//   link   --emulator URL --graph ID --backup ID [--index N]   prints a fresh download link of the backup's N-th file (a secret: stays in the script)
//   sas                                                 prints an Azurite account SAS (for rclone)
//   hashes --backup ID --file NAME --size N            prints the expected md5 and sha256
//   watch  --storage CONN --container NAME [--timeout SECONDS]   follows the local run to its end and checks the copies
//   restore --storage CONN --api URL [--key KEY] --graph ID --obs URL [--timeout SECONDS] [--idempotency-key K]   restores the copied backup into another graph
//   hashfloor [--size-mib N]                           prints the CPU s/GB of MD5 + SHA-256 from memory (the floor)
//   copy   --link URL --local DIR | --blob CONNECTION --container NAME [--block-size B] [--concurrency N] [--connections N] [--max-connections N] [--budget-mib M] [--memory-report true]
//          copies one file with the copy engine
//   copy-many --emulator URL --graph ID --backup ID --count N [--from I] --local DIR   copies the backup's files I..I+N-1 at once in one process
//   upload --blob CONNECTION --container NAME --path P --size N --md5 HEX --sha256 HEX --obs URL --bucket B --key K [--concurrency N] [--max-connections N] [--read-back true]
//          uploads one copy file to OBS with the restore engine (the way back), then optionally reads it back as a drill does
var arguments = args.Skip(1).Chunk(2).Where(p => p.Length == 2).ToDictionary(p => p[0].TrimStart('-'), p => p[1]);
switch (args.FirstOrDefault())
{
    case "link":
    {
        var (name, link) = await DownloadLinkAsync(arguments, int.Parse(arguments.GetValueOrDefault("index", "0"), System.Globalization.CultureInfo.InvariantCulture));
        Console.WriteLine($"{name} {link}");
        return 0;
    }
    case "hashfloor":
    {
        // The floor of a verified copy's CPU: MD5 and SHA-256 of the bytes, from memory, nothing else.
        var total = long.Parse(arguments.GetValueOrDefault("size-mib", "1024"), System.Globalization.CultureInfo.InvariantCulture) << 20;
        var buffer = new byte[8 << 20];
        BackupContent.Fill(BackupContent.Seed("hash-floor", "bench.bin"), 0, buffer);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        using var md5 = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.MD5);
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        for (long done = 0; done < total; done += buffer.Length)
        {
            var chunk = buffer.AsSpan(0, (int)Math.Min(buffer.Length, total - done));
            md5.AppendData(chunk);
            sha.AppendData(chunk);
        }

        md5.GetHashAndReset();
        sha.GetHashAndReset();
        var seconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;

        // A source with a multipart ETag (OBS files over 16 MiB) also needs each part's MD5: one more MD5 pass.
        cpu = Process.GetCurrentProcess().TotalProcessorTime;
        for (long done = 0; done < total; done += buffer.Length)
        {
            System.Security.Cryptography.MD5.HashData(buffer.AsSpan(0, (int)Math.Min(buffer.Length, total - done)));
        }

        var parts = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        Console.WriteLine($"{seconds / (total / 1e9):F3} {(seconds + parts) / (total / 1e9):F3} CPU s/GB for MD5 + SHA-256 of {total >> 20} MiB from memory; with the parts' MD5s");
        return 0;
    }

    case "restore":
        return await BackupRelay.DevTools.LocalRun.RestoreAsync(arguments);

    case "sas":
    {
        var sas = new AccountSasBuilder(AccountSasPermissions.All, DateTimeOffset.UtcNow.AddHours(2), AccountSasServices.Blobs, AccountSasResourceTypes.All)
        {
            Protocol = SasProtocol.HttpsAndHttp,
        };
        Console.WriteLine(sas.ToSasQueryParameters(new StorageSharedKeyCredential(StorageConnection.DevelopmentAccountName, StorageConnection.DevelopmentAccountKey)));
        return 0;
    }

    case "hashes":
    {
        var (md5, sha) = BackupContent.Hashes(BackupContent.Seed(arguments["backup"], arguments["file"]), long.Parse(arguments["size"], System.Globalization.CultureInfo.InvariantCulture));
        Console.WriteLine($"{Convert.ToHexStringLower(md5)} {Convert.ToHexStringLower(sha)}");
        return 0;
    }

    case "copy":
    {
        var options = new CopyOptions();
        if (arguments.TryGetValue("block-size", out var block))
        {
            options.BlockSizeBytes = int.Parse(block, System.Globalization.CultureInfo.InvariantCulture);
        }

        if (arguments.TryGetValue("budget-mib", out var budgetMib))
        {
            options.MemoryBudgetBytes = long.Parse(budgetMib, System.Globalization.CultureInfo.InvariantCulture) << 20;
        }

        if (arguments.TryGetValue("concurrency", out var concurrency))
        {
            options.MaxConcurrency = int.Parse(concurrency, System.Globalization.CultureInfo.InvariantCulture);
        }

        if (arguments.TryGetValue("connections", out var connections))
        {
            options.DownloadConnections = int.Parse(connections, System.Globalization.CultureInfo.InvariantCulture);
        }

        if (arguments.TryGetValue("max-connections", out var maxConnections))
        {
            options.MaxDownloadConnections = int.Parse(maxConnections, System.Globalization.CultureInfo.InvariantCulture);
        }

        options.SliceMaxDuration = TimeSpan.FromHours(1);
        using var download = new HttpClient(new SocketsHttpHandler { AutomaticDecompression = System.Net.DecompressionMethods.None }) { Timeout = Timeout.InfiniteTimeSpan };
        var budget = new CopyBufferBudget(options.MemoryBudgetBytes);
        var copier = new FileCopier(download, budget, new HashStateCache(), Options.Create(options), TimeProvider.System, NullLogger<FileCopier>.Instance);
        ICopyDestination destination;
        if (arguments.TryGetValue("local", out var dir))
        {
            destination = new LocalDirectoryCopyDestination(dir);
        }
        else
        {
            var container = StorageAccount.FromConnectionString(arguments["blob"]).GetContainer(arguments["container"]);
            await container.CreateIfNotExistsAsync();
            destination = new BlobCopyDestination(container);
        }

        var link = new Uri(arguments["link"]);
        var memory = arguments.GetValueOrDefault("memory-report") == "true" ? BackupRelay.DevTools.ProcessMemory.StartPeak() : (long?)null;
        var watch = Stopwatch.StartNew();
        var result = await copier.CopyAsync(destination, new CopyRequest("benchmark", arguments.GetValueOrDefault("path", "benchmark.bin"), link, _ => Task.FromResult(link)));
        Console.WriteLine($"{result.Outcome} {result.Length} {result.Md5Hex ?? "-"} {result.Sha256Hex} {watch.Elapsed.TotalSeconds:F3} budget-peak={budget.PeakInUseBytes} connections={result.Statistics.Connections}" +
            (memory is { } start ? $" rss-start-kib={start} rss-peak-kib={BackupRelay.DevTools.ProcessMemory.PeakKib()}" : ""));
        return result.Outcome == CopyOutcome.Completed ? 0 : 1;
    }

    case "copy-many":
    {
        // Many copies at once in one process, sharing one budget, as the isolated worker runs its queue batch.
        var options = new CopyOptions { SliceMaxDuration = TimeSpan.FromHours(1) };
        var count = int.Parse(arguments["count"], System.Globalization.CultureInfo.InvariantCulture);
        using var download = new HttpClient(new SocketsHttpHandler { AutomaticDecompression = System.Net.DecompressionMethods.None }) { Timeout = Timeout.InfiniteTimeSpan };
        var budget = new CopyBufferBudget(options.MemoryBudgetBytes);
        var copier = new FileCopier(download, budget, new HashStateCache(), Options.Create(options), TimeProvider.System, NullLogger<FileCopier>.Instance);
        var destination = new LocalDirectoryCopyDestination(arguments["local"]);
        var links = new List<(string Name, Uri Link)>();
        var from = int.Parse(arguments.GetValueOrDefault("from", "0"), System.Globalization.CultureInfo.InvariantCulture);
        for (var i = from; i < from + count; i++)
        {
            links.Add(await DownloadLinkAsync(arguments, i));
        }

        var watch = Stopwatch.StartNew();
        var results = await Task.WhenAll(links.Select(l => copier.CopyAsync(destination, new CopyRequest(l.Name, l.Name, l.Link, _ => Task.FromResult(l.Link)))));
        var completed = results.Count(r => r.Outcome == CopyOutcome.Completed);
        Console.WriteLine($"{completed} {results.Sum(r => r.Length)} {watch.Elapsed.TotalSeconds:F3} budget-peak={budget.PeakInUseBytes}");
        return completed == count ? 0 : 1;
    }

    case "upload":
    {
        var obsOptions = new BackupRelay.Restores.ObsOptions
        {
            Endpoint = new Uri(arguments["obs"]), Region = "cn-north-4", AccessKeyId = arguments.GetValueOrDefault("access-key", "EMULATORACCESSKEY001"),
            SecretAccessKey = arguments.GetValueOrDefault("secret-key", "emulator-secret-key-0000000000000000000001"),
        };
        if (arguments.TryGetValue("concurrency", out var sends))
        {
            // A fixed number of sends, unless --max-connections lets them grow.
            obsOptions.MaxConcurrency = obsOptions.MaxUploadConnections = int.Parse(sends, System.Globalization.CultureInfo.InvariantCulture);
        }

        if (arguments.TryGetValue("max-connections", out var mostSends))
        {
            obsOptions.MaxUploadConnections = int.Parse(mostSends, System.Globalization.CultureInfo.InvariantCulture);
        }

        var copyOptions = new CopyOptions { SliceMaxDuration = TimeSpan.FromHours(1) };
        var account = StorageAccount.FromConnectionString(arguments["blob"]);
        var runs = account.GetContainer("upload-progress");
        await runs.CreateIfNotExistsAsync();
        var budget = new CopyBufferBudget(copyOptions.MemoryBudgetBytes);
        using var obs = new BackupRelay.Restores.ObsClient(Options.Create(obsOptions));
        var uploader = new BackupRelay.Restores.ObsUploader(obs, new BlobCopyDestination(account.GetContainer(arguments["container"])),
            new BackupRelay.Restores.UploadProgressStore(runs), budget, new HashStateCache(), Options.Create(obsOptions), Options.Create(copyOptions),
            TimeProvider.System, NullLogger<BackupRelay.Restores.ObsUploader>.Instance);
        var size = long.Parse(arguments["size"], System.Globalization.CultureInfo.InvariantCulture);
        var request = new BackupRelay.Restores.UploadRequest("bench-" + Guid.NewGuid().ToString("N")[..8], "bench.bin", arguments["path"], arguments["bucket"],
            arguments["key"], size, arguments["md5"], arguments["sha256"], 0, new Dictionary<string, string>());
        var watch = Stopwatch.StartNew();
        var uploaded = await uploader.UploadAsync(request, CancellationToken.None);
        var uploadSeconds = watch.Elapsed.TotalSeconds;
        var readBack = "";
        if (uploaded.Outcome == BackupRelay.Restores.UploadOutcome.Completed && arguments.GetValueOrDefault("read-back") == "true")
        {
            watch.Restart();
            var reader = new BackupRelay.Restores.ObsReader(obs, budget, new HashStateCache(), Options.Create(obsOptions), Options.Create(copyOptions), TimeProvider.System);
            var read = await reader.ReadAsync(new BackupRelay.Restores.ReadBackRequest(request.RunId, request.File, request.Bucket, request.Key, size, 0), CancellationToken.None);
            var match = read.Served is { } served && served.Length == size && served.Sha256Hex == request.Sha256Hex;
            readBack = $" read-back={(match ? "verified" : read.Problem ?? "differs")} {watch.Elapsed.TotalSeconds:F3}";
        }

        Console.WriteLine($"{uploaded.Outcome} {size} {uploaded.PartsUploaded} {uploadSeconds:F3} {uploaded.FailureReason}{readBack} budget-peak={budget.PeakInUseBytes} connections={uploaded.Connections}");
        return uploaded.Outcome == BackupRelay.Restores.UploadOutcome.Completed && !readBack.Contains("differs", StringComparison.Ordinal) ? 0 : 1;
    }

    case "watch":
        return await BackupRelay.DevTools.LocalRun.WatchAsync(arguments);

    default:
        Console.Error.WriteLine("usage: BackupRelay.DevTools link|sas|hashes|copy|watch --name value ...");
        return 2;
}

// A fresh download link of the backup's index-th file, as the GES API gives it (a secret: stays in the script).
static async Task<(string Name, Uri Link)> DownloadLinkAsync(Dictionary<string, string> arguments, int index)
{
    using var http = new HttpClient { BaseAddress = new Uri(arguments["emulator"]) };
    var auth = new JsonObject
    {
        ["auth"] = new JsonObject
        {
            ["identity"] = new JsonObject
            {
                ["methods"] = new JsonArray("password"),
                ["password"] = new JsonObject
                {
                    ["user"] = new JsonObject { ["name"] = DemoSeed.UserName, ["password"] = DemoSeed.Password, ["domain"] = new JsonObject { ["name"] = DemoSeed.Domain } },
                },
            },
            ["scope"] = new JsonObject { ["project"] = new JsonObject { ["name"] = DemoSeed.Region } },
        },
    };
    using var tokenResponse = await http.PostAsJsonAsync("v3/auth/tokens", auth);
    var token = tokenResponse.Headers.GetValues("X-Subject-Token").Single();
    using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{DemoSeed.ProjectId}/graphs/{arguments["graph"]}/backup-files?backup_id={arguments["backup"]}");
    request.Headers.Add("X-Auth-Token", token);
    using var response = await http.SendAsync(request);
    var body = (await response.Content.ReadFromJsonAsync<JsonNode>())!;
    var file = body["files"]![index]!;
    return (file["name"]!.GetValue<string>(), new Uri(file["download_link"]!.GetValue<string>()));
}
