using System.Net;
using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.Runs;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The real executable as the Functions host runs it: a child process told its port by
/// <c>FUNCTIONS_CUSTOMHANDLER_PORT</c>, ready within the host's 30 s window, and killed and started
/// again when an invocation outlives <c>functionTimeout</c>, taking every invocation in flight with it.
/// The backup still ends copied and verified.
/// </summary>
public sealed class HandlerRestartTests : IAsyncLifetime
{
    private const string Graph = "a1b2c3d4-0000-4000-8000-0000000000c1";
    private const int Block = 64 * 1024;

    private RunningEmulator _emulator = null!;
    private Azurite _azurite = null!;
    private HostProcess? _handler;
    private readonly List<HostProcess> _dead = [];
    private readonly List<TimeSpan> _readiness = [];

    public async Task InitializeAsync()
    {
        var seed = DemoSeed.Create();
        seed.Settings.JobPendingSeconds = 0.2;
        seed.Settings.JobRunningSeconds = 0.5;
        seed.Graphs.Add(new SeedGraph { Id = Graph, Name = "ledger", ProjectId = DemoSeed.ProjectId, BackupFileSizes = [(Block * 4) + 3, Block + 1, 17] });
        _emulator = await HuaweiCloudEmulator.StartAsync(seed);
        _azurite = await Azurite.StartNewAsync();
    }

    [Fact]
    public async Task An_invocation_past_function_timeout_restarts_the_handler_and_the_backup_still_lands_verified()
    {
        // The first download hangs for 20 s: far past the 4 s function timeout below.
        _emulator.State.Faults.Add(new FaultSpec { Method = "GET", Path = "/obs/*", Kind = "latency", DelayMs = 20_000, Count = 1 });
        var hostJson = PipelineHarness.WriteHostJson();
        var storage = StorageAccount.FromConnectionString(_azurite.ConnectionString);
        await using var driver = new FunctionsHostDriver(await StartHandlerAsync(hostJson), storage, Azurite.RepositoryRoot(),
            HostQueueOptions.Load(hostJson), functionTimeout: TimeSpan.FromSeconds(4), restart: () => StartHandlerAsync(hostJson));
        driver.Start();

        var tick = await driver.TickAsync();
        Assert.True(tick.Succeeded, tick.Failure);
        var runs = new RunStore(storage.GetContainer(QueueNames.RunsContainer));
        var deadline = DateTime.UtcNow.AddSeconds(120);
        RunRecord? run = null;
        while (DateTime.UtcNow < deadline && run is not { IsFinished: true })
        {
            run = (await runs.ListAsync()).SingleOrDefault();
            await Task.Delay(200);
        }

        Assert.True(run is { Status: RunStatus.Succeeded },
            $"run: {run?.Status} {string.Join("; ", run?.Errors.Select(e => e.Reason) ?? [])}\nhandler output:\n{Tail()}");
        Assert.True(driver.Restarts >= 1, "the handler was never restarted");
        Assert.All(_readiness, r => Assert.True(r < TimeSpan.FromSeconds(30), $"ready after {r}"));

        var backup = _emulator.State.Backups.Single(b => b.GraphId == Graph);
        var destination = storage.GetContainer("ges-backups");
        foreach (var file in backup.Files)
        {
            var blob = (await destination.GetBlobClient($"ledger/{backup.Id}/{file.Name}").DownloadContentAsync()).Value;
            var expected = new byte[file.Size];
            BackupContent.Fill(BackupContent.Seed(backup.Id, file.Name), 0, expected);
            Assert.Equal(expected, blob.Content.ToArray());
            Assert.Equal("true", blob.Details.Metadata[BackupRelay.Copying.CopyMetadata.Verified]);
        }

        Assert.Single(_emulator.State.Backups, b => b.GraphId == Graph);
    }

    [Fact]
    public async Task Telemetry_exporters_that_reach_nothing_do_not_delay_readiness()
    {
        // Azure Monitor with Entra ID (no managed identity here) and OTLP, both pointing at a closed port.
        var client = await StartHandlerAsync(PipelineHarness.WriteHostJson(), new()
        {
            ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:9/",
            ["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] = "ClientId=00000000-0000-0000-0000-000000000002;Authorization=AAD",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9",
        });
        var ready = Assert.Single(_readiness);
        Assert.True(ready < TimeSpan.FromSeconds(10), $"ready after {ready}");
        using var health = await client.GetAsync("/api/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.False(_handler!.HasExited);
    }

    /// <summary>Kills the running handler (if any, as a timeout does), starts a new one and waits for any answer to GET /.</summary>
    private async Task<HttpClient> StartHandlerAsync(string hostJson, Dictionary<string, string>? extra = null)
    {
        if (_handler is not null)
        {
            // Killed, not disposed: the host double may still hold its client for invocations that die with it.
            await _handler.KillAsync();
            _dead.Add(_handler);
        }

        var settings = HostProcess.Settings(_azurite, _emulator);
        foreach (var (key, value) in new Dictionary<string, string>
        {
            ["HuaweiCloud__Resilience__BaseDelay"] = "00:00:00.050",
            ["HuaweiCloud__Resilience__RequestsPerSecond"] = "200",
            ["Backup__Schedule"] = "0 0 2 * * *",
            ["Backup__Graphs__0__GraphId"] = Graph,
            ["Backup__PollInitialDelay"] = "00:00:00.200",
            ["Backup__PollMaxDelay"] = "00:00:01",
            ["Copy__BlockSizeBytes"] = Block.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Copy__SliceMaxBytes"] = (Block * 2).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Standalone__HostJsonPath"] = hostJson,
            ["Http__AllowAnonymousLocalDevelopment"] = "true",
        })
        {
            settings[key] = value;
        }

        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }

        _handler = await HostProcess.StartAsync(settings, customHandler: true);
        _readiness.Add(_handler.ReadyAfter);
        return _handler.Client;
    }

    private string Tail() => _handler?.Tail() ?? "";

    public async Task DisposeAsync()
    {
        foreach (var process in _dead.Append(_handler).OfType<HostProcess>())
        {
            await process.DisposeAsync();
        }

        await _azurite.DisposeAsync();
        await _emulator.DisposeAsync();
    }
}
