using Microsoft.Extensions.Logging.Testing;
using System.Text.Json;
using BackupRelay.Configuration;
using BackupRelay.Copying;
using BackupRelay.Hosting;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Scheduling;
using BackupRelay.Storage;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The whole product on one host: the emulator (GES, OBS), a private Azurite (queues, run records,
/// destination), and BackupRelay with fast timings. Subclasses pick the host.
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

    /// <summary>Set before start: wraps every queue function (e.g. to simulate crashes).</summary>
    protected Func<IQueueFunction, IQueueFunction>? Decorate { get; set; }

    protected virtual Dictionary<string, string?> ExtraSettings() => [];

    /// <summary>Extra services for a test (e.g. in-memory telemetry exporters), added after the app's own.</summary>
    protected virtual void ConfigureServices(IServiceCollection services)
    {
    }

    /// <summary>Runs once storage is up and before the host starts (e.g. to fill a queue).</summary>
    protected virtual Task BeforeHostStartsAsync() => Task.CompletedTask;

    /// <summary>The test's own Azurite (in memory unless a test needs to restart it on its data).</summary>
    protected virtual Task<Azurite> StartAzuriteAsync() => Azurite.StartNewAsync();

    public async Task InitializeAsync()
    {
        var seed = DemoSeed.Create();
        seed.Settings.JobPendingSeconds = 0.2;
        seed.Settings.JobRunningSeconds = 0.5;
        seed.Graphs.Add(new SeedGraph { Id = GraphA, Name = "orders", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [(Block * 3) + 5, Block - 1, 0] });
        seed.Graphs.Add(new SeedGraph { Id = GraphB, Name = "social", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [(Block * 5) + 77, 1] });
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
            ["Copy:BlockSizeBytes"] = Block.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Copy:SliceMaxBytes"] = (Block * 2).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Standalone:MinPollingInterval"] = "00:00:00.050",
            ["Standalone:HostJsonPath"] = WriteHostJson(),
            ["Http:FunctionKeys:0"] = FunctionKey,
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

    /// <summary>The repository's host.json with test timings (fast polling, quick retries).</summary>
    internal static string WriteHostJson()
    {
        var path = Path.Combine(Path.GetTempPath(), $"backuprelay-host-{Guid.NewGuid():N}.json");
        var host = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Azurite.RepositoryRoot(), "host.json")))!;
        host["extensions"]!["queues"]!["visibilityTimeout"] = "00:00:00.200";
        host["extensions"]!["queues"]!["maxPollingInterval"] = "00:00:00.200";
        File.WriteAllText(path, host.ToJsonString());
        return path;
    }

    protected void Configure(IServiceCollection services, IConfiguration configuration)
    {
        services.AddLogging(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Information));
        services.AddBackupRelay(configuration);
        ConfigureServices(services);
        if (Decorate is { } decorate)
        {
            var registrations = services.Where(d => d.ServiceType == typeof(IQueueFunction)).ToList();
            foreach (var registration in registrations)
            {
                services.Remove(registration);
                var type = registration.ImplementationType!;
                services.AddSingleton<IQueueFunction>(sp => decorate((IQueueFunction)ActivatorUtilities.CreateInstance(sp, type)));
            }
        }
    }

    /// <summary>True: the custom handler driven as the Functions host would; false: the standalone host.</summary>
    protected abstract bool UseCustomHandler { get; }

    /// <summary>
    /// True: the published isolated worker (artifacts/functions), run by the local Functions host in this
    /// process; the test reads storage through its own copy of the library's services.
    /// </summary>
    protected virtual bool UseWorker => false;

    private BackupRelay.LocalHost.LocalFunctionsHost? _local;
    private ServiceProvider? _clientServices;
    private ILoggerFactory? _localLogs;

    /// <summary>The local Functions host, when the worker is the app.</summary>
    protected BackupRelay.LocalHost.LocalFunctionsHost? LocalHost => _local;

    private WebApplication? _app;
    private FunctionsHostDriver? _driver;
    private HttpClient? _client;

    protected async Task StartHostAsync(IConfiguration configuration)
    {
        if (UseWorker)
        {
            await StartWorkerAsync(configuration);
            return;
        }

        if (!UseCustomHandler)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Configuration.AddConfiguration(configuration);
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            Configure(builder.Services, builder.Configuration);
            builder.Services.AddBackupRelayStandalone(builder.Configuration);
            _app = builder.Build();
            _app.MapBackupRelayApi(checkFunctionKeys: true);
            await _app.StartAsync();
            Services = _app.Services;
            Api = new HttpClient { BaseAddress = new Uri(Address(_app)), Timeout = TimeSpan.FromMinutes(2) };
            return;
        }

        var web = WebApplication.CreateSlimBuilder();
        web.Configuration.AddConfiguration(configuration);
        web.WebHost.UseUrls("http://127.0.0.1:0");
        Configure(web.Services, web.Configuration);
        _app = web.Build();
        _app.MapCustomHandler();
        _app.MapBackupRelayApi(checkFunctionKeys: false);
        await _app.StartAsync();
        Services = _app.Services;
        var address = Address(_app);
        _client = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(5) };
        using (var ready = await _client.GetAsync("/"))
        {
            Assert.True(ready.IsSuccessStatusCode);
        }

        _driver = new FunctionsHostDriver(_client, Storage, Azurite.RepositoryRoot(), HostQueueOptions.Load(configuration["Standalone:HostJsonPath"]));
        _driver.Start();

        // Requests go through the host: key check per function.json authLevel, then forwarded as is.
        Api = new HttpClient(new ForwardingHostHandler(_driver, Keys))
        {
            BaseAddress = new Uri(address),
            Timeout = TimeSpan.FromMinutes(2),
        };
    }

    private async Task StartWorkerAsync(IConfiguration configuration)
    {
        var loggers = _localLogs = LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Information));
        var settings = configuration.AsEnumerable().Where(kv => kv.Value is not null)
            .ToDictionary(kv => kv.Key.Replace(":", "__", StringComparison.Ordinal), kv => kv.Value!, StringComparer.OrdinalIgnoreCase);
        _local = await BackupRelay.LocalHost.LocalFunctionsHost.StartAsync(new BackupRelay.LocalHost.LocalHostOptions
        {
            AppDirectory = WorkerApp.Directory,
            Settings = settings,
            HttpPort = 0,
            MasterKey = Keys.MasterKey,
            HostKeys = [.. Keys.HostKeyValues],
            FunctionKeys = new Dictionary<string, string>(Keys.FunctionKeys, StringComparer.OrdinalIgnoreCase),
            HostJsonPath = configuration["Standalone:HostJsonPath"],
            MinPollingInterval = TimeSpan.FromMilliseconds(50),
            MessageVisibility = TimeSpan.FromSeconds(20),
        }, loggers);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddBackupRelay(configuration);
        _clientServices = services.BuildServiceProvider();
        Services = _clientServices;
        Api = new HttpClient { BaseAddress = _local.HttpAddress, Timeout = TimeSpan.FromMinutes(2) };
    }

    /// <summary>The API as callers see it: the standalone host itself, or the Functions host in front of the custom handler.</summary>
    protected HttpClient Api { get; private set; } = null!;

    /// <summary>A host key: it opens every <c>authLevel: function</c> function, on both hosts.</summary>
    public const string FunctionKey = "test-function-key-0123456789";

    /// <summary>The Functions host's keys in front of the custom handler: the host key above, a master key, one function's own key.</summary>
    protected static readonly HostKeys Keys = new("test-master-key-0123456789", [FunctionKey],
        new Dictionary<string, string> { ["GetRun"] = "test-getrun-key-0123456789" });

    /// <summary>The Functions host double, when the custom handler is the host.</summary>
    protected FunctionsHostDriver? Driver => _driver;

    private static string Address(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

    /// <summary>One timer tick as the host delivers it.</summary>
    protected async Task TickAsync(FunctionsHostDriver.ScheduleStatusShape shape = FunctionsHostDriver.ScheduleStatusShape.WithFractions)
    {
        if (_local is not null)
        {
            var response = await _local.RunTimerNowAsync(FunctionNames.ScheduleBackups);
            Assert.True(response.Result.Status == Microsoft.Azure.Functions.Worker.Grpc.Messages.StatusResult.Types.Status.Success, response.Result.Exception?.Message);
            return;
        }

        if (_driver is null)
        {
            await Services.GetRequiredService<ScheduleBackupsHandler>().HandleAsync();
            return;
        }

        var answer = await _driver.TickAsync(shape: shape);
        Assert.True(answer.Succeeded, answer.Failure);
    }

    protected async Task StopHostAsync()
    {
        List<string> violations = [];
        Api?.Dispose();
        if (_driver is not null)
        {
            await _driver.DisposeAsync();
            violations = _driver.ContractViolations;
            _driver = null;
        }

        _client?.Dispose();
        _client = null;
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

        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }

        Assert.True(violations.Count == 0, "answers the Functions host would refuse:\n" + string.Join("\n", violations));
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

        var state = string.Join("\n", (await Runs.ListAsync()).Select(r => JsonSerializer.Serialize(r, BackupRelayJson.Default.RunRecord)));
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

