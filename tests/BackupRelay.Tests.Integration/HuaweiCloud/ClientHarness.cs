using Microsoft.Extensions.Logging.Testing;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Cse;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.HuaweiCloud.Ges;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Tests.Integration.HuaweiCloud;

/// <summary>An emulator plus the client library wired by DI against it, with fast resilience settings.</summary>
public abstract class ClientHarness : IAsyncLifetime
{
    private ServiceProvider? _services;

    protected RunningEmulator Emulator { get; private set; } = null!;
    protected EmulatorState State => Emulator.State;
    protected GesClient Ges => _services!.GetRequiredService<GesClient>();
    protected CseClient Cse => _services!.GetRequiredService<CseClient>();
    protected FakeLoggerProvider Logs { get; } = new();
    protected HttpClient Admin { get; private set; } = null!;

    /// <summary>Extra settings (keys without the HuaweiCloud: prefix).</summary>
    protected virtual Dictionary<string, string?> Settings(Uri emulator) => [];

    protected virtual bool UseAkSk => false;

    public async Task InitializeAsync()
    {
        var seed = DemoSeed.Create();
        seed.Settings.JobPendingSeconds = 1;
        seed.Settings.JobRunningSeconds = 4;

        // The client reads both answer shapes; these tests start from the variant with backup_id
        // (the test that turns it off proves the page's shape, job_id only).
        seed.Settings.AddBackupReturnsBackupId = true;
        Emulator = await HuaweiCloudEmulator.StartAsync(seed);
        Admin = new HttpClient { BaseAddress = Emulator.BaseAddress };
        var settings = new Dictionary<string, string?>
        {
            ["Region"] = DemoSeed.Region,
            ["ProjectId"] = DemoSeed.ProjectId,
            ["Endpoints:Iam"] = Emulator.BaseAddress.ToString(),
            ["Endpoints:Ges"] = Emulator.BaseAddress.ToString(),
            ["Endpoints:Cse"] = Emulator.BaseAddress.ToString(),
            ["Resilience:BaseDelay"] = "00:00:00.020",
            ["Resilience:MaxDelay"] = "00:00:02",
            ["Resilience:AttemptTimeout"] = "00:00:05",
            ["Resilience:TotalTimeout"] = "00:00:30",
            ["Resilience:RequestsPerSecond"] = "1000",
            ["Resilience:BreakMinimumThroughput"] = "1000",
        };
        if (UseAkSk)
        {
            settings["Auth:AccessKey"] = DemoSeed.AccessKey;
            settings["Auth:SecretKey"] = DemoSeed.SecretKey;
        }
        else
        {
            settings["Auth:UserName"] = DemoSeed.UserName;
            settings["Auth:Password"] = DemoSeed.Password;
            settings["Auth:DomainName"] = DemoSeed.Domain;
        }

        foreach (var (key, value) in Settings(Emulator.BaseAddress))
        {
            settings[key] = value;
        }

        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>("HuaweiCloud:" + s.Key, s.Value)))
            .Build();
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(Logs));

        // The client's clock is the emulator's: advancing one ages tokens on both sides.
        services.AddSingleton<TimeProvider>(State.Clock);
        services.AddHuaweiCloud(configuration);
        _services = services.BuildServiceProvider();
        _ = _services.GetRequiredService<IOptions<HuaweiCloudOptions>>().Value;
    }

    public async Task DisposeAsync()
    {
        Admin.Dispose();
        await _services!.DisposeAsync();
        await Emulator.DisposeAsync();
    }

    protected void Advance(TimeSpan by) => State.Clock.Advance(by);

    /// <summary>
    /// The requests the emulator recorded, once those matching are no longer being answered (at most 3 s): a client can
    /// see a dropped connection or give up on a slow answer before the emulator has finished, and recorded, the request.
    /// </summary>
    protected List<RecordedRequest> Requests(string method, string pathContains)
    {
        bool Matches(string m, string path) => m == method && path.Contains(pathContains, StringComparison.Ordinal);
        SpinWait.SpinUntil(() => State.InFlight(Matches) == 0, TimeSpan.FromSeconds(3));
        return [.. State.RecordedRequests().Where(r => Matches(r.Method, r.Path))];
    }

    protected int TokenRequests => Requests("POST", "/v3/auth/tokens").Count;

    protected void Fault(FaultSpec fault) => State.Faults.Add(fault);
}
