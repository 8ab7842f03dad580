using Microsoft.Extensions.Logging.Testing;
using System.Text.Json;
using BackupRelay.Copying;
using BackupRelay.Hosting;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Storage;
using Azure.Storage.Blobs;
using BackupRelay.LocalHost;
using Microsoft.Azure.Functions.Worker.Grpc.Messages;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The whole product: the emulator (GES, OBS), a private Azurite (queues, run records, destination),
/// and the published isolated worker with fast timings, run by the local Functions host.
/// </summary>
public abstract class PipelineHarness : IAsyncLifetime
{
    public const string GraphA = "a1b2c3d4-0000-4000-8000-00000000000a";
    public const string GraphB = "a1b2c3d4-0000-4000-8000-00000000000b";
    protected const int Block = 64 * 1024;

    protected RunningEmulator Emulator { get; private set; } = null!;
    protected EmulatorState State => Emulator.State;
    protected Azurite Azurite { get; set; } = null!;
    protected StorageAccount Storage { get; private set; } = null!;
    protected IServiceProvider Services { get; set; } = null!;
    protected FakeLoggerProvider Logs { get; } = new();
    protected RunStore Runs => Services.GetRequiredService<RunStore>();
    protected BlobContainerClient Destination => Storage.GetContainer("ges-backups");

    /// <summary>
    /// Set before start: asked with each answer the worker gives; true kills the worker before the host
    /// sees the answer (a crash after a step's work, before its message is settled).
    /// </summary>
    protected Func<string, InvocationRequest, InvocationResponse, bool>? KillWorkerBeforeAnswer { get; set; }

    /// <summary>How long a received message stays hidden while its invocation runs (the runtime: 10 minutes).</summary>
    protected virtual TimeSpan MessageVisibility => TimeSpan.FromSeconds(20);

    /// <summary>
    /// host.json as the runtime applies it for this test: the repository's, overridden by the test timings and a test's
    /// own changes given as <c>AzureFunctionsJobHost__*</c> app settings — read the same way by the local host and the worker.
    /// </summary>
    protected HostJson HostJson => HostJson.Read(Path.Combine(Azurite.RepositoryRoot(), "host.json"),
        name => HostJsonOverrides().TryGetValue(name, out var value) ? value : null);

    /// <summary>The test timings (fast polling, quick retries) as the app settings that override host.json.</summary>
    public static Dictionary<string, string> TestTimings() => new(StringComparer.OrdinalIgnoreCase)
    {
        [HostJson.OverridePrefix + "extensions__queues__visibilityTimeout"] = "00:00:00.200",
        [HostJson.OverridePrefix + "extensions__queues__maxPollingInterval"] = "00:00:00.200",
    };

    /// <summary>A test's own host.json overrides (<c>AzureFunctionsJobHost__functionTimeout</c> and the like), on top of the test timings.</summary>
    protected virtual Dictionary<string, string> HostJsonOverrides() => TestTimings();

    protected virtual Dictionary<string, string?> ExtraSettings() => [];

    /// <summary>A test's own graphs or emulator settings, added to the two graphs every test has.</summary>
    protected virtual void ExtendSeed(EmulatorSeed seed)
    {
    }

    /// <summary>Runs once storage is up and before the host starts (e.g. to fill a queue).</summary>
    protected virtual Task BeforeHostStartsAsync() => Task.CompletedTask;

    /// <summary>The test's own in-memory Azurite (behind gates where a test takes storage away).</summary>
    protected virtual Task<Azurite> StartAzuriteAsync() => Azurite.NewAccountAsync();

    public async Task InitializeAsync()
    {
        var seed = DemoSeed.Create();
        seed.Settings.JobPendingSeconds = 0.2;
        seed.Settings.JobRunningSeconds = 0.5;
        seed.Graphs.Add(new SeedGraph { Id = GraphA, Name = "orders", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [(Block * 3) + 5, Block - 1, 0] });
        seed.Graphs.Add(new SeedGraph { Id = GraphB, Name = "social", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [(Block * 5) + 77, 1] });
        ExtendSeed(seed);
        Emulator = await HuaweiCloudEmulator.StartAsync(seed);
        Azurite = await StartAzuriteAsync();
        Storage = StorageAccount.FromConnectionString(Azurite.ConnectionString);
        await BeforeHostStartsAsync();
        await StartHostAsync(Configuration());
    }

    protected IConfiguration Configuration()
    {
        var settings = new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = Azurite.ConnectionString,
            ["Destination"] = Azurite.ConnectionString,
            ["Destination:Container"] = "ges-backups",
            ["HuaweiCloud:Region"] = DemoSeed.Region,
            ["HuaweiCloud:ProjectId"] = DemoSeed.ProjectId,
            ["HuaweiCloud:Endpoints:Iam"] = Emulator.BaseAddress.ToString(),
            ["HuaweiCloud:Endpoints:Ges"] = Emulator.BaseAddress.ToString(),
            ["HuaweiCloud:Endpoints:Cse"] = Emulator.BaseAddress.ToString(),
            ["HuaweiCloud:Auth:UserName"] = DemoSeed.UserName,
            ["HuaweiCloud:Auth:Password"] = DemoSeed.Password,
            ["HuaweiCloud:Auth:DomainName"] = DemoSeed.Domain,
            ["HuaweiCloud:Resilience:BaseDelay"] = "00:00:00.050",
            ["HuaweiCloud:Resilience:RequestsPerSecond"] = "200",
            ["Backup:Schedule"] = "0 0 2 * * *",
            ["Backup:Graphs:0:GraphId"] = GraphA,
            ["Backup:Graphs:1:GraphId"] = GraphB,
            ["Backup:PollInitialDelay"] = "00:00:00.200",
            ["Backup:PollMaxDelay"] = "00:00:01",
            ["Backup:OperationPollInterval"] = "00:00:00.200",
            ["Copy:BlockSizeBytes"] = Block.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Copy:SliceMaxBytes"] = (Block * 2).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Obs:Endpoint"] = new Uri(Emulator.BaseAddress, "obs").ToString(),
            ["Obs:AccessKeyId"] = DemoSeed.AccessKey,
            ["Obs:SecretAccessKey"] = DemoSeed.SecretKey,
            ["Obs:Bucket"] = "ges-restore-bucket",
            ["Obs:PartSizeBytes"] = "102400",
            ["Obs:MaxErrorRetry"] = "1",
        };
        foreach (var (key, value) in ExtraSettings())
        {
            settings[key] = value;
        }

        return new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
    }

    private LocalFunctionsHost? _local;
    private ServiceProvider? _clientServices;
    private ILoggerFactory? _localLogs;

    /// <summary>The local Functions host running the published worker.</summary>
    protected LocalFunctionsHost LocalHost => _local ?? throw new InvalidOperationException("the host is not running");

    /// <summary>
    /// Starts the published isolated worker (artifacts/functions) on the local Functions host in this
    /// process; the test reads storage through its own copy of the library's services.
    /// </summary>
    protected async Task StartHostAsync(IConfiguration configuration)
    {
        var loggers = _localLogs = LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Information));
        var settings = WorkerSettings(configuration);
        foreach (var (name, value) in HostJsonOverrides())
        {
            settings[name] = value;
        }

        _local = await LocalFunctionsHost.StartAsync(new LocalHostOptions
        {
            AppDirectory = WorkerApp.Directory,
            Settings = settings,
            HttpPort = 0,
            MasterKey = Keys.MasterKey,
            HostKeys = [.. Keys.HostKeyValues],
            FunctionKeys = new Dictionary<string, string>(Keys.FunctionKeys, StringComparer.OrdinalIgnoreCase),
            MinPollingInterval = TimeSpan.FromMilliseconds(50),
            MessageVisibility = MessageVisibility,
            KillWorkerBeforeAnswer = KillWorkerBeforeAnswer,
        }, loggers);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddBackupRelay(configuration);
        _clientServices = services.BuildServiceProvider();
        Services = _clientServices;
        Api = new HttpClient { BaseAddress = _local.HttpAddress, Timeout = TimeSpan.FromMinutes(2) };
    }

    /// <summary>Settings as the worker gets them: environment variables, <c>:</c> written <c>__</c>.</summary>
    protected static Dictionary<string, string> WorkerSettings(IConfiguration configuration) =>
        configuration.AsEnumerable().Where(kv => kv.Value is not null)
            .ToDictionary(kv => kv.Key.Replace(":", "__", StringComparison.Ordinal), kv => kv.Value!, StringComparer.OrdinalIgnoreCase);

    /// <summary>The API as callers see it: through the local host (keys, routes), forwarded to the worker.</summary>
    protected HttpClient Api { get; private set; } = null!;

    /// <summary>A host key: it opens every <c>authLevel: function</c> function.</summary>
    public const string FunctionKey = "test-function-key-0123456789";

    /// <summary>The host's keys: the host key above, a master key, one function's own key.</summary>
    protected static readonly HostKeys Keys = new("test-master-key-0123456789", [FunctionKey],
        new Dictionary<string, string> { ["GetRun"] = "test-getrun-key-0123456789" });

    /// <summary>One timer tick, as the runtime's admin endpoint runs a timer function now.</summary>
    protected async Task TickAsync()
    {
        var response = await LocalHost.RunTimerNowAsync(FunctionNames.ScheduleBackups);
        Assert.True(response.Result.Status == StatusResult.Types.Status.Success, response.Result.Exception?.Message);
    }

    protected async Task StopHostAsync()
    {
        Api?.Dispose();
        if (_local is not null)
        {
            await _local.DisposeAsync();
            _local = null;
        }

        if (_clientServices is not null)
        {
            await _clientServices.DisposeAsync();
            _clientServices = null;
        }

        _localLogs?.Dispose();
        _localLogs = null;
    }

    public virtual async Task DisposeAsync()
    {
        try
        {
            await StopHostAsync();
        }
        finally
        {
            await Azurite.DisposeAsync();
            await Emulator.DisposeAsync();
        }
    }

    protected async Task<List<RunRecord>> WaitForRunsAsync(int count, TimeSpan? limit = null)
    {
        var deadline = DateTime.UtcNow + (limit ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < deadline)
        {
            var runs = await Runs.ListAsync();
            if (runs.Count >= count && runs.All(r => r.IsFinished))
            {
                return runs;
            }

            await Task.Delay(100);
        }

        var state = string.Join("\n", (await Runs.ListAsync()).Select(r => JsonSerializer.Serialize(r, RunRecordJson.Default.RunRecord)));
        var warnings = Logs.Collector.GetSnapshot().Where(r => r.Level >= LogLevel.Warning).Select(r => $"{r.Level} {r.Category}: {r.Message}").TakeLast(40);
        throw new TimeoutException($"runs did not finish:\n{state}\nwarnings:\n{string.Join("\n", warnings)}\nlogs:\n{string.Join("\n", Logs.Lines().TakeLast(20))}");
    }

    /// <summary>Each file of the run's backup is at its path, byte-exact, and the manifest lists it with its hashes.</summary>
    protected async Task AssertCopiedAsync(RunRecord run, string folder)
    {
        Assert.True(run.Status == RunStatus.Succeeded,
            $"run {run.Id} ended {run.Status}: {string.Join("; ", run.Errors.Select(e => $"{e.Step}: {e.Reason}"))}");
        var backup = State.Backups.Single(b => b.Id == run.BackupId);
        Assert.Equal(backup.Files.Count, run.Files.Count);
        var manifestBlob = (await Destination.GetBlobClient($"{folder}/{run.BackupId}/{CopyBackupFileHandler.ManifestName}").DownloadContentAsync()).Value;
        var manifest = JsonSerializer.Deserialize(manifestBlob.Content.ToMemory().Span, BackupRelayJson.Default.BackupManifest)!;
        Assert.Equal(run.Id, manifest.RunId);
        Assert.Equal(run.GraphId, manifest.GraphId);
        Assert.Equal(run.BackupId, manifest.Backup!.Id);
        Assert.Equal("manual", manifest.Backup.BackupMethod);
        foreach (var file in backup.Files)
        {
            var blob = (await Destination.GetBlobClient($"{folder}/{run.BackupId}/{file.Name}").DownloadContentAsync()).Value;
            var expected = new byte[file.Size];
            BackupContent.Fill(BackupContent.Seed(backup.Id, file.Name), 0, expected);
            Assert.Equal(expected, blob.Content.ToArray());
            var (md5, sha) = BackupContent.Hashes(BackupContent.Seed(backup.Id, file.Name), file.Size);
            var listed = manifest.Files.Single(f => f.Name == file.Name);
            Assert.Equal(file.Size, listed.Size);
            Assert.Equal(Convert.ToHexStringLower(md5), listed.Md5);
            Assert.Equal(Convert.ToHexStringLower(sha), listed.Sha256);
            Assert.Equal("true", blob.Details.Metadata[CopyMetadata.Verified]);
        }
    }

    protected int GesCalls(string graphId) => State.RecordedRequests().Count(r => r.Path.Contains($"/graphs/{graphId}", StringComparison.Ordinal));
}

