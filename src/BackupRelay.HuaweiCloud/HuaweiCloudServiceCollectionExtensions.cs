using BackupRelay.HuaweiCloud.Auth;
using BackupRelay.HuaweiCloud.Cse;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.HuaweiCloud.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace BackupRelay.HuaweiCloud;

public static class HuaweiCloudServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="GesClient"/> and <see cref="CseClient"/> with auth and resilience, bound to
    /// the <c>HuaweiCloud</c> section and validated at start-up.
    /// </summary>
    public static IServiceCollection AddHuaweiCloud(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<HuaweiCloudOptions>().Bind(configuration.GetSection(HuaweiCloudOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HuaweiCloudOptions>, HuaweiCloudOptionsValidator>());
        services.TryAddSingleton<HuaweiCloudPipelines>();
        services.TryAddSingleton<IamTokenProvider>();
        services.TryAddTransient<HuaweiCloudAuthHandler>();

        services.AddHttpClient(IamTokenProvider.HttpClientName, (sp, http) => Configure(http, sp, o => o.IamEndpoint))
            .AddHttpMessageHandler(sp => Resilience(sp, "iam"));
        services.AddHttpClient<GesClient>((sp, http) => Configure(http, sp, o => o.GesEndpoint))
            .AddHttpMessageHandler(sp => Resilience(sp, "ges"))
            .AddHttpMessageHandler<HuaweiCloudAuthHandler>();
        services.AddHttpClient<CseClient>((sp, http) => Configure(http, sp, o => o.CseEndpoint))
            .AddHttpMessageHandler(sp => Resilience(sp, "cse"))
            .AddHttpMessageHandler<HuaweiCloudAuthHandler>();
        return services;
    }

    private static void Configure(HttpClient http, IServiceProvider services, Func<HuaweiCloudOptions, Uri> endpoint)
    {
        var uri = endpoint(services.GetRequiredService<IOptions<HuaweiCloudOptions>>().Value);
        http.BaseAddress = uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");

        // Timeouts are the pipeline's (per attempt and in total).
        http.Timeout = Timeout.InfiniteTimeSpan;
    }

    private static HuaweiCloudResilienceHandler Resilience(IServiceProvider services, string endpoint) =>
        new(services.GetRequiredService<HuaweiCloudPipelines>().For(endpoint));
}
