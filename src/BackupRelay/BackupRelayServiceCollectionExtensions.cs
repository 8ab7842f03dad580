using BackupRelay.Backups;
using BackupRelay.Configuration;
using BackupRelay.Copying;
using BackupRelay.Hosting;
using BackupRelay.HuaweiCloud;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Scheduling;
using BackupRelay.Storage;
using BackupRelay.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay;

/// <summary>The app's storage account (<c>AzureWebJobsStorage</c>): work queues and run records.</summary>
public sealed record AppStorage(StorageAccount Account);

public static class BackupRelayServiceCollectionExtensions
{
    public const string AppStorageSetting = "AzureWebJobsStorage";

    /// <summary>Everything the app is, feature by feature: options, Huawei Cloud clients, storage, the functions.</summary>
    public static IServiceCollection AddBackupRelay(this IServiceCollection services, IConfiguration configuration,
        Action<OpenTelemetry.IOpenTelemetryBuilder>? telemetry = null)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddBackupRelayTelemetry(configuration, telemetry);
        services.AddHuaweiCloud(configuration);
        services.AddRunsAndQueues(configuration);
        services.AddBackups(configuration);
        services.AddRestores(configuration);
        services.AddGraphStatus();
        services.AddHttpApi(configuration);

        // host.json as the runtime applies it (its AzureFunctionsJobHost__* app-setting overrides too): the
        // last-delivery rule needs the maxDequeueCount the runtime's queue listener uses.
        services.TryAddSingleton(_ => HostJson.Read(HostJson.AppHostJsonPath(), name => configuration[name.Replace("__", ":", StringComparison.Ordinal)]));
        services.AddSingleton<FunctionInvoker>();
        services.AddSingleton<StartupChecks>();
        services.AddHostedService(sp => sp.GetRequiredService<StartupChecks>());
        return services;
    }

    /// <summary>Options bound from their section, validated by <typeparamref name="TValidator"/> at start-up.</summary>
    private static OptionsBuilder<TOptions> AddValidatedOptions<TOptions, TValidator>(this IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
        return services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
    }

    /// <summary>The app's storage: work queues, run records and their index, and the run events (metrics, notifications) they raise.</summary>
    public static IServiceCollection AddRunsAndQueues(this IServiceCollection services, IConfiguration configuration)
    {
        // The app only sends to its queues (the Functions runtime receives): no decoding hook is needed.
        services.AddSingleton(sp => new AppStorage(new StorageAccount(StorageConnection.FromConfiguration(configuration, AppStorageSetting))));
        services.AddSingleton(sp => new WorkQueues(sp.GetRequiredService<AppStorage>().Account, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<BackupRelayMetrics>()));
        services.AddSingleton(sp => new RunStore(sp.GetRequiredService<AppStorage>().Account.GetContainer(QueueNames.RunsContainer),
            sp.GetRequiredService<Notifications.RunEvents>()));
        services.AddSingleton<IWorkSender>(sp => sp.GetRequiredService<WorkQueues>());
        services.AddSingleton<IRunRecords>(sp => sp.GetRequiredService<RunStore>());
        services.AddSingleton<PoisonReplay>();
        services.AddSingleton<NumberedPolls>();
        services.AddSingleton<SubmitOnce>();
        services.AddSingleton<RunHousekeeping>();
        services.AddHostedService<RunHousekeepingService>();
        services.AddValidatedOptions<Notifications.NotifyOptions, Notifications.NotifyOptionsValidator>(configuration, Notifications.NotifyOptions.SectionName);
        services.AddSingleton<Notifications.RunEvents>();
        services.AddSingleton<Notifications.NotifyHandler>();
        services.AddHttpClient(Notifications.NotifyHandler.HttpClientName)
            // No redirects: a signed event goes to the configured URL (https, or http on loopback) or nowhere.
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false })
            .RemoveAllLoggers(); // the receiver's URL may carry a token: no request logging for this client
        return services;
    }

    /// <summary>The way out: the schedule, starting and following backup jobs, the copy engine and the destination.</summary>
    public static IServiceCollection AddBackups(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<BackupOptions, BackupOptionsValidator>(configuration, BackupOptions.SectionName);
        services.AddSingleton<IValidateOptions<BackupOptions>, QuietRunLimitValidator>();
        services.AddValidatedOptions<DestinationOptions, DestinationOptionsValidator>(configuration, DestinationOptions.SectionName);
        services.AddValidatedOptions<CopyOptions, CopyOptionsValidator>(configuration, CopyOptions.SectionName);
        services.AddSingleton<ICopyDestination>(sp => CreateDestination(sp, configuration));
        services.AddSingleton(sp =>
        {
            var budget = new CopyBufferBudget(sp.GetRequiredService<IOptions<CopyOptions>>().Value.MemoryBudgetBytes);
            BackupRelayMetrics.AddBufferGauges(sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), budget);
            return budget;
        });
        services.AddSingleton<HashStateCache>();
        services.AddHttpClient(FileCopier.HttpClientName, http => http.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AutomaticDecompression = System.Net.DecompressionMethods.None,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                // A link's bytes come from its own host or not at all (CopySource treats a redirect as a failed link).
                AllowAutoRedirect = false,
            })
            .RemoveAllLoggers(); // download links are secrets: no request logging for this client
        services.AddSingleton(sp => new FileCopier(
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(FileCopier.HttpClientName),
            sp.GetRequiredService<CopyBufferBudget>(), sp.GetRequiredService<HashStateCache>(),
            sp.GetRequiredService<IOptions<CopyOptions>>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<FileCopier>>()));
        services.AddSingleton<ScheduleBackupsHandler>();
        services.AddSingleton<StartBackupHandler>();
        services.AddSingleton<PollBackupJobHandler>();
        services.AddSingleton<CopyBackupFileHandler>();
        return services;
    }

    /// <summary>The way back: restores from a copy (OBS uploads, GES import), restore drills, and the operations they follow.</summary>
    public static IServiceCollection AddRestores(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<Restores.ObsOptions, Restores.ObsOptionsValidator>(configuration, Restores.ObsOptions.SectionName);
        services.AddSingleton<IPostConfigureOptions<Restores.ObsOptions>, Restores.ObsOptionsDefaults>();
        services.AddSingleton<Restores.ObsClient>();
        services.AddSingleton<Restores.ObsUploader>();
        services.AddSingleton<Restores.ObsReader>();
        services.AddSingleton(sp => new Restores.UploadProgressStore(sp.GetRequiredService<AppStorage>().Account.GetContainer(QueueNames.RunsContainer)));
        services.AddSingleton<Restores.CopyRestores>();
        services.AddSingleton<Drills.DrillScheduler>();
        services.AddSingleton<Restores.UploadToObsHandler>();
        services.AddSingleton<BackupRelay.Operations.PollOperationHandler>();
        return services;
    }

    /// <summary>Freshness and restore proof of every configured graph, computed each minute.</summary>
    public static IServiceCollection AddGraphStatus(this IServiceCollection services)
    {
        services.AddSingleton<Freshness.GraphStatusService>();
        services.AddHostedService<Freshness.FreshnessMonitor>();
        return services;
    }

    /// <summary>The HTTP API's shared pieces: options, health probe, webhook replay guard, problem details, quiet framework logs.</summary>
    public static IServiceCollection AddHttpApi(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<BackupRelay.Http.HttpOptions>().Bind(configuration.GetSection(BackupRelay.Http.HttpOptions.SectionName));

        // The framework's per-request lines carry the full URL, a ?code= function key or a signed query
        // included; they are quieted (the app logs what it does, with ids only).
        services.AddLogging(logging => logging
            .AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Warning)
            .AddFilter("Microsoft.AspNetCore.Routing.EndpointMiddleware", LogLevel.Warning)
            .AddFilter("Microsoft.AspNetCore.Http.Result", LogLevel.Warning));
        services.AddProblemDetails();
        services.AddSingleton<BackupRelay.Http.HealthProbe>();

        // One endpoint class per resource: the HTTP adapters take it, and it takes what it needs.
        services.AddSingleton<BackupRelay.Http.HealthEndpoint>();
        services.AddSingleton<Backups.BackupNowEndpoint>();
        services.AddSingleton<Restores.EngineRestoreEndpoint>();
        services.AddSingleton<Restores.ImportEndpoint>();
        services.AddSingleton<Restores.RestoreFromCopyEndpoint>();
        services.AddSingleton<Runs.RunEndpoints>();
        services.AddSingleton<Freshness.GraphEndpoints>();
        services.AddSingleton<BackupRelay.Http.SignatureReplayGuard>();
        services.AddExceptionHandler<BackupRelay.Http.ApiExceptionHandler>();
        return services;
    }

    private static ICopyDestination CreateDestination(IServiceProvider services, IConfiguration configuration)
    {
        var options = services.GetRequiredService<IOptions<DestinationOptions>>().Value;
        if (options.LocalDirectory is { Length: > 0 } directory)
        {
            return new LocalDirectoryCopyDestination(directory);
        }

        var account = new StorageAccount(StorageConnection.FromConfiguration(configuration, options.Connection));
        return new BlobCopyDestination(account.GetContainer(options.Container), options.WriteOnce);
    }
}
