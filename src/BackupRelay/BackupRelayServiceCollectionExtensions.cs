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
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay;

/// <summary>The app's storage account (<c>AzureWebJobsStorage</c>): work queues and run records.</summary>
public sealed record AppStorage(StorageAccount Account);

public static class BackupRelayServiceCollectionExtensions
{
    public const string AppStorageSetting = "AzureWebJobsStorage";

    /// <summary>Everything both hosts share: options, Huawei Cloud clients, storage, the copy engine and the functions.</summary>
    public static IServiceCollection AddBackupRelay(this IServiceCollection services, IConfiguration configuration,
        Action<OpenTelemetry.IOpenTelemetryBuilder>? telemetry = null)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<BackupOptions>().Bind(configuration.GetSection(BackupOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<BackupOptions>, BackupOptionsValidator>();
        services.AddOptions<DestinationOptions>().Bind(configuration.GetSection(DestinationOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<DestinationOptions>, DestinationOptionsValidator>();
        services.AddOptions<CopyOptions>().Bind(configuration.GetSection(CopyOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<CopyOptions>, CopyOptionsValidator>();
        services.AddOptions<BackupRelay.Http.HttpOptions>().Bind(configuration.GetSection(BackupRelay.Http.HttpOptions.SectionName));
        services.AddOptions<Restores.ObsOptions>().Bind(configuration.GetSection(Restores.ObsOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IPostConfigureOptions<Restores.ObsOptions>, Restores.ObsOptionsDefaults>();
        services.AddSingleton<IValidateOptions<Restores.ObsOptions>, Restores.ObsOptionsValidator>();
        services.AddOptions<Notifications.NotifyOptions>().Bind(configuration.GetSection(Notifications.NotifyOptions.SectionName)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<Notifications.NotifyOptions>, Notifications.NotifyOptionsValidator>();
        services.AddBackupRelayTelemetry(configuration, telemetry);
        services.AddHuaweiCloud(configuration);
        // The framework's per-request lines carry the full URL, a ?code= function key or a signed query
        // included; they are quieted for both hosts (the app logs what it does, with ids only).
        services.AddLogging(logging => logging
            .AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Warning)
            .AddFilter("Microsoft.AspNetCore.Routing.EndpointMiddleware", LogLevel.Warning)
            .AddFilter("Microsoft.AspNetCore.Http.Result", LogLevel.Warning));
        services.AddProblemDetails();
        services.AddSingleton<BackupRelay.Http.HealthProbe>();
        services.AddSingleton<BackupRelay.Http.SignatureReplayGuard>();
        services.AddSingleton<Freshness.GraphStatusService>();
        services.AddHostedService<Freshness.FreshnessMonitor>();
        services.AddSingleton<Notifications.RunEvents>();
        services.AddExceptionHandler<BackupRelay.Http.ApiExceptionHandler>();

        services.AddSingleton(sp => new AppStorage(new StorageAccount(
            StorageConnection.FromConfiguration(configuration, AppStorageSetting),
            new StorageClientSettings { OnUndecodableMessage = args => sp.GetRequiredService<WorkQueues>().ParkUndecodableAsync(args) })));
        services.AddSingleton(sp => new WorkQueues(sp.GetRequiredService<AppStorage>().Account, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<BackupRelayMetrics>()));
        services.AddSingleton(sp => new RunStore(sp.GetRequiredService<AppStorage>().Account.GetContainer(QueueNames.RunsContainer),
            sp.GetRequiredService<Notifications.RunEvents>()));
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
            })
            .RemoveAllLoggers(); // download links are secrets: no request logging for this client
        services.AddSingleton(sp => new FileCopier(
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(FileCopier.HttpClientName),
            sp.GetRequiredService<CopyBufferBudget>(), sp.GetRequiredService<HashStateCache>(),
            sp.GetRequiredService<IOptions<CopyOptions>>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<FileCopier>>()));

        services.AddSingleton<ScheduleBackupsHandler>();
        services.AddSingleton<Drills.DrillScheduler>();
        services.AddSingleton<IQueueFunction, StartBackupHandler>();
        services.AddSingleton<IQueueFunction, PollBackupJobHandler>();
        services.AddSingleton<IQueueFunction, CopyBackupFileHandler>();
        services.AddSingleton<IQueueFunction, BackupRelay.Operations.PollOperationHandler>();
        services.AddSingleton<IQueueFunction, Notifications.NotifyHandler>();
        services.AddSingleton<IQueueFunction, Restores.UploadToObsHandler>();
        services.AddSingleton<Restores.ObsClient>();
        services.AddSingleton<Restores.ObsUploader>();
        services.AddSingleton<Restores.CopyRestores>();
        services.AddSingleton(sp => new Restores.UploadProgressStore(sp.GetRequiredService<AppStorage>().Account.GetContainer(QueueNames.RunsContainer)));
        services.AddHttpClient(Notifications.NotifyHandler.HttpClientName)
            // No redirects: a signed event goes to the configured URL (https, or http on loopback) or nowhere.
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false })
            .RemoveAllLoggers(); // the receiver's URL may carry a token: no request logging for this client
        services.AddSingleton<FunctionInvoker>();

        // host.json's queue rules: the last-delivery rule needs maxDequeueCount.
        services.TryAddSingleton(_ => HostQueueOptions.Load(HostQueueOptions.AppHostJson()));
        services.AddSingleton<StartupChecks>();
        services.AddHostedService(sp => sp.GetRequiredService<StartupChecks>());
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
