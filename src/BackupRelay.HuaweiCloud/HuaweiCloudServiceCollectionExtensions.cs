using BackupRelay.HuaweiCloud.Auth;
using BackupRelay.HuaweiCloud.Cse;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.HuaweiCloud.Json;
using BackupRelay.HuaweiCloud.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Refit;

namespace BackupRelay.HuaweiCloud;

public static class HuaweiCloudServiceCollectionExtensions
{
    internal const string IamClient = "BackupRelay.HuaweiCloud.Iam";
    internal const string GesClientName = "BackupRelay.HuaweiCloud.Ges";
    internal const string CseClientName = "BackupRelay.HuaweiCloud.Cse";

    /// <summary>
    /// Registers <see cref="GesClient"/> and <see cref="CseClient"/> over source-generated Refit clients
    /// with the standard resilience handler and the project's auth handler, bound to the
    /// <c>HuaweiCloud</c> section and validated at start-up.
    /// </summary>
    public static IServiceCollection AddHuaweiCloud(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<HuaweiCloudOptions>().Bind(configuration.GetSection(HuaweiCloudOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HuaweiCloudOptions>, HuaweiCloudOptionsValidator>());
        services.TryAddSingleton<IamTokenProvider>();
        services.TryAddTransient<HuaweiCloudAuthHandler>();
        services.TryAddSingleton<GesClient>();
        services.TryAddSingleton<CseClient>();

        services.AddMetrics();

        // The framework's per-request lines and Polly's event lines (each failed attempt with its full
        // exception) are off for these clients: the resilience pipeline logs one line per failed attempt.
        services.AddLogging(logging => logging.AddFilter("Polly", LogLevel.None));
        services.TryAddSingleton<HuaweiCloudCallCounter>();

        // IAM: resilience, no auth (it is where the auth comes from).
        services.AddRefitGeneratedClient<IIamApi>(Settings(HuaweiSnakeJson.Default), IamClient)
            .ConfigureHttpClient((sp, http) => Configure(http, sp, o => o.IamEndpoint))
            .RemoveAllLoggers()
            .AddHuaweiCloudResilience("iam")
            .AddHttpMessageHandler(sp => new HuaweiCloudCallMetrics("iam", sp.GetRequiredService<HuaweiCloudCallCounter>()));
        services.AddRefitGeneratedClient<IGesApi>(Settings(HuaweiSnakeJson.Default), GesClientName)
            .ConfigureHttpClient((sp, http) => Configure(http, sp, o => o.GesEndpoint))
            .RemoveAllLoggers()
            .AddHuaweiCloudResilience("ges")
            .AddHttpMessageHandler<HuaweiCloudAuthHandler>()
            .AddHttpMessageHandler(sp => new HuaweiCloudCallMetrics("ges", sp.GetRequiredService<HuaweiCloudCallCounter>()));

        // CSE's restore API is camelCase and its engine manager snake_case: two Refit interfaces on one client.
        services.AddRefitGeneratedClient<ICseEngineApi>(Settings(HuaweiSnakeJson.Default), CseClientName)
            .ConfigureHttpClient((sp, http) => Configure(http, sp, o => o.CseEndpoint))
            .RemoveAllLoggers()
            .AddHuaweiCloudResilience("cse")
            .AddHttpMessageHandler<HuaweiCloudAuthHandler>()
            .AddHttpMessageHandler(sp => new HuaweiCloudCallMetrics("cse", sp.GetRequiredService<HuaweiCloudCallCounter>()));
        services.AddRefitGeneratedClient<ICseRestoreApi>(Settings(HuaweiCamelJson.Default), CseClientName);
        return services;
    }

    private static Func<IServiceProvider, RefitSettings> Settings(System.Text.Json.Serialization.JsonSerializerContext json) =>
        services => HuaweiCloudRefit.Settings(json, services.GetRequiredService<TimeProvider>());

    private static void Configure(HttpClient http, IServiceProvider services, Func<HuaweiCloudOptions, Uri> endpoint)
    {
        http.BaseAddress = endpoint(services.GetRequiredService<IOptions<HuaweiCloudOptions>>().Value);

        // Timeouts are the pipeline's (per attempt and in total).
        http.Timeout = Timeout.InfiniteTimeSpan;
    }
}
