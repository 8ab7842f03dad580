using Microsoft.Extensions.Logging.Testing;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Tests.Integration.Copying;

public enum DestinationKind
{
    Blob,
    Local,
}

/// <summary>An emulator serving backup files, Azurite and a temp directory as destinations, and a copier factory.</summary>
public abstract class CopyHarness : IAsyncLifetime
{
    protected const int Block = 64 * 1024;
    private readonly List<IDisposable> _disposables = [];
    private string _tempDir = "";

    protected RunningEmulator Emulator { get; private set; } = null!;
    protected EmulatorState State => Emulator.State;
    protected HttpClient Http { get; private set; } = null!;
    protected StorageAccount Storage { get; private set; } = null!;
    protected FakeLoggerProvider Logs { get; } = new();
    protected int Refreshes;

    private readonly List<string> _containers = [];
    private Azurite _azurite = null!;

    public async Task InitializeAsync()
    {
        var seed = DemoSeed.Create();
        seed.Settings.JobPendingSeconds = 0;
        seed.Settings.JobRunningSeconds = 0;
        Emulator = await HuaweiCloudEmulator.StartAsync(seed);
        Http = new HttpClient { BaseAddress = Emulator.BaseAddress };
        _azurite = await StartAzuriteAsync();
        Storage = StorageAccount.FromConnectionString(_azurite.ConnectionString, new StorageClientSettings { Delay = TimeSpan.FromMilliseconds(20) });
        _tempDir = Directory.CreateTempSubdirectory("backuprelay-copy-").FullName;
    }

    /// <summary>Whether the test has an Azurite to itself (a measurement), started and disposed with it.</summary>
    protected virtual bool OwnAzurite => false;

    private Task<Azurite> StartAzuriteAsync() => OwnAzurite ? Azurite.NewAccountAsync() : Azurite.InstanceAsync();

    public async Task DisposeAsync()
    {
        foreach (var d in _disposables)
        {
            d.Dispose();
        }

        // The shared Azurite keeps everything in memory for the whole run: what a test wrote goes with it.
        foreach (var container in _containers)
        {
            try
            {
                await Storage.GetContainer(container).DeleteIfExistsAsync();
            }
            catch (Azure.RequestFailedException)
            {
            }
        }

        if (OwnAzurite)
        {
            await _azurite.DisposeAsync();
        }

        Http.Dispose();
        await Emulator.DisposeAsync();
        Directory.Delete(_tempDir, true);
    }

    protected FileCopier Copier(Action<CopyOptions>? configure = null, CopyBufferBudget? budget = null, HashStateCache? hashes = null,
        DelegatingHandler? handler = null)
    {
        // Connections do not grow here unless a test asks (AdaptiveConnectionsTests): its counts and budgets stay exact.
        var options = new CopyOptions { BlockSizeBytes = Block, MaxConcurrency = 4, MaxSourceAttempts = 5, MaxDownloadConnections = 1 };
        configure?.Invoke(options);
        if (handler is not null)
        {
            handler.InnerHandler = new SocketsHttpHandler();
        }

        var download = handler is null ? new HttpClient { Timeout = Timeout.InfiniteTimeSpan } : new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _disposables.Add(download);
        var factory = LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Trace));
        _disposables.Add(factory);
        return new FileCopier(download, budget ?? new CopyBufferBudget(64L << 20), hashes ?? new HashStateCache(),
            Options.Create(options), TimeProvider.System, factory.CreateLogger<FileCopier>());
    }

    protected async Task<ICopyDestination> DestinationAsync(DestinationKind kind)
    {
        if (kind == DestinationKind.Local)
        {
            return new LocalDirectoryCopyDestination(Path.Combine(_tempDir, Guid.NewGuid().ToString("N")));
        }

        var container = Storage.GetContainer("copy-" + Guid.NewGuid().ToString("N")[..20]);
        await container.CreateIfNotExistsAsync();
        _containers.Add(container.Name);
        return new BlobCopyDestination(container);
    }

    /// <summary>A finished backup with one file of <paramref name="size"/> bytes; returns its ids and a fresh link.</summary>
    protected async Task<SourceFile> BackupFileAsync(long size)
    {
        var graphId = "g" + Guid.NewGuid().ToString("N")[..8];
        var backupId = Guid.NewGuid().ToString();
        State.AddGraph(new SeedGraph
        {
            Id = graphId, Name = graphId, ProjectId = DemoSeed.ProjectId,
            Backups = [new SeedBackup { Id = backupId, FileSizes = [size] }],
        });
        var file = new SourceFile(graphId, backupId, State.Backups.Single(b => b.Id == backupId).Files[0].Name, size);
        file.Link = await LinkAsync(file);
        return file;
    }

    protected async Task<Uri> LinkAsync(SourceFile file)
    {
        var token = "MIItest" + Guid.NewGuid().ToString("N");
        lock (State.Sync)
        {
            State.Tokens[token] = new IssuedToken
            {
                UserName = DemoSeed.UserName, DomainName = DemoSeed.Domain, ProjectId = DemoSeed.ProjectId, ProjectName = DemoSeed.Region,
                IssuedAt = State.Now, ExpiresAt = State.Now.AddDays(2),
            };
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{DemoSeed.ProjectId}/graphs/{file.GraphId}/backup-files?backup_id={file.BackupId}");
        request.Headers.Add("X-Auth-Token", token);
        using var response = await Http.SendAsync(request);
        var body = (await response.Content.ReadFromJsonAsync<JsonNode>())!;
        return new Uri(body["files"]![0]!["download_link"]!.GetValue<string>());
    }

    protected CopyRequest Request(SourceFile file, CopyContinuation? continuation = null, string? path = null) =>
        new($"copy-{file.BackupId}-{file.Name}", path ?? $"{file.GraphId}/{file.BackupId}/{file.Name}", file.Link!,
            async ct =>
            {
                Interlocked.Increment(ref Refreshes);
                file.Link = await LinkAsync(file);
                return file.Link;
            }, continuation);

    protected static byte[] Expected(SourceFile file)
    {
        var bytes = new byte[file.Size];
        BackupContent.Fill(BackupContent.Seed(file.BackupId, file.Name), 0, bytes);
        return bytes;
    }

    protected static async Task<byte[]> ReadAllAsync(ICopyDestination destination, string path)
    {
        await using var stream = await destination.OpenReadAsync(path);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    /// <summary>The copier was built with <c>Copy__WholeFileMd5=Always</c> (set by the test that asks for it).</summary>
    protected bool WholeFileMd5Always { get; set; }

    protected static string PathOf(SourceFile file) => $"{file.GraphId}/{file.BackupId}/{file.Name}";

    protected async Task AssertCopiedAsync(ICopyDestination destination, SourceFile file, CopyResult result)
    {
        Assert.True(result.Outcome == CopyOutcome.Completed,
            $"Expected Completed, was {result.Outcome}: {result.FailureReason} ({result.Statistics}, continuation {result.Continuation})");
        var (md5, sha) = BackupContent.Hashes(BackupContent.Seed(file.BackupId, file.Name), file.Size);

        // A copy its source's multipart ETag proved skips the whole-file MD5 (Copy__WholeFileMd5=WhenNeeded), unless asked
        // for it or hashed back from the destination; every other copy has it.
        var withoutMd5 = result.Verification == Verification.SourceMultipartMd5 && !result.Statistics.HashesRecomputed && !WholeFileMd5Always;
        Assert.Equal(withoutMd5 ? null : Convert.ToHexStringLower(md5), result.Md5Hex);
        Assert.Equal(Convert.ToHexStringLower(sha), result.Sha256Hex);
        var committed = await destination.GetCommittedAsync(PathOf(file));
        Assert.NotNull(committed);
        Assert.True(committed.Verified);
        Assert.Equal(file.Size, committed.Length);
        Assert.Equal(result.Md5Hex, committed.Md5Hex);
        Assert.Equal(result.Sha256Hex, committed.Sha256Hex);
        Assert.Equal(Expected(file), await ReadAllAsync(destination, PathOf(file)));
        if (destination is BlobCopyDestination blob)
        {
            Assert.Equal(withoutMd5 ? null : md5, (await blob.Container.GetBlobClient(PathOf(file)).GetPropertiesAsync()).Value.ContentHash);
        }
    }

    protected sealed class SourceFile(string graphId, string backupId, string name, long size)
    {
        public string GraphId { get; } = graphId;
        public string BackupId { get; } = backupId;
        public string Name { get; } = name;
        public long Size { get; } = size;
        public Uri? Link { get; set; }
    }
}
