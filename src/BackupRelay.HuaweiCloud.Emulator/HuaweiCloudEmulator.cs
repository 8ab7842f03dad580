using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// The Huawei Cloud emulator as a web application: IAM, GES v2, CSE, OBS download links and the
/// <c>/_emulator</c> control API. Runs standalone (<c>Program</c>) or in-process in tests.
/// </summary>
public static class HuaweiCloudEmulator
{
    public static WebApplication Build(EmulatorSeed seed, string[]? args = null, TimeProvider? time = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton(new EmulatorClock(time ?? TimeProvider.System));
        builder.Services.AddSingleton(sp => new EmulatorState(seed, sp.GetRequiredService<EmulatorClock>()));
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, CamelJson.Wire));
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 1024 * 1024);

        var app = builder.Build();
        app.UseEmulatorPipeline();
        app.MapIam();
        app.MapGes();
        app.MapCse();
        app.MapObs();
        app.MapAdmin();
        app.MapGet("/", () => "BackupRelay Huawei Cloud emulator");
        return app;
    }

    /// <summary>Starts an emulator on a free loopback port; dispose to stop it.</summary>
    public static async Task<RunningEmulator> StartAsync(EmulatorSeed seed, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        var app = Build(seed, ["--urls", "http://127.0.0.1:0"], time);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new RunningEmulator(app, new Uri(address.TrimEnd('/') + "/"));
    }

    public static EmulatorSeed LoadSeed(string path)
    {
        using var stream = File.OpenRead(path);
        return JsonSerializer.Deserialize(stream, CamelJson.Wire.EmulatorSeed)
            ?? throw new InvalidDataException($"The seed file {path} is empty.");
    }
}

public sealed class RunningEmulator(WebApplication app, Uri baseAddress) : IAsyncDisposable
{
    public Uri BaseAddress { get; } = baseAddress;
    public EmulatorState State { get; } = app.Services.GetRequiredService<EmulatorState>();

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
