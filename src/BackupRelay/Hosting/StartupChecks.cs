using BackupRelay.Configuration;
using BackupRelay.Copying;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using BackupRelay.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.Hosting;

/// <summary>
/// Reaches storage and creates the queues and containers before anything runs, so a wrong or
/// unreachable connection stops start-up with the setting's name instead of failing the first
/// message. Runs once: the program awaits it to report problems cleanly, the hosted service
/// awaits the same run.
/// Rights, as infra/main.bicep grants them: on the app's own account the identity holds Storage
/// Queue Data Contributor (create queue, messages) and Storage Blob Data Owner (create the runs
/// container), so those calls are allowed; on the destination it holds only the write-only role
/// (no container create), so a refused create is answered by a write probe instead.
/// </summary>
public sealed class StartupChecks(IServiceProvider services) : IHostedService
{
    /// <summary>Longest the checks may take; the SDK's own retries would otherwise wait about 20 s on a dead endpoint.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(8);

    private Task? _run;
    private readonly Lock _gate = new();

    /// <summary>
    /// A problem found at start that does not stop the app (runs, status and the other functions still
    /// work), shown by the health endpoint: the destination cannot be written with the rights this app has.
    /// </summary>
    public string? DestinationProblem { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _run ??= RunAsync(services);
        }

        return _run.WaitAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task RunAsync(IServiceProvider services)
    {
        using var timeout = new CancellationTokenSource(Timeout, services.GetRequiredService<TimeProvider>());
        var queues = services.GetRequiredService<WorkQueues>();
        var runs = services.GetRequiredService<RunStore>();
        var destination = services.GetRequiredService<ICopyDestination>();
        var appStorage = BackupRelayServiceCollectionExtensions.AppStorageSetting;
        await CheckAsync(appStorage, "the queue service", queues.Queue(QueueNames.StartBackup).Uri,
            () => queues.EnsureCreatedAsync(timeout.Token));
        await CheckAsync(appStorage, "the blob service", runs.Container.Uri,
            () => runs.Container.CreateIfNotExistsAsync(cancellationToken: timeout.Token));
        if (destination is BlobCopyDestination blob)
        {
            var setting = services.GetRequiredService<IOptions<DestinationOptions>>().Value.Connection;
            try
            {
                await CheckAsync(setting, "the destination container", blob.Container.Uri,
                    () => blob.Container.CreateIfNotExistsAsync(cancellationToken: timeout.Token));
            }
            catch (StartupCheckException ex) when (StorageErrors.Find(ex.InnerException) is { Status: 403 })
            {
                // The identity may not create containers (infra creates the destination; the app's role there
                // is write-only): verify what it needs instead — that it can write into the container.
                DestinationProblem = await ProbeWriteAsync(blob, setting, timeout.Token);
                if (DestinationProblem is not null)
                {
                    // Start-up goes on (status, runs and the other functions do not need this container);
                    // the problem is shown on /api/health and logged where operators look.
                    StartupLog.DestinationUnusable(services.GetRequiredService<ILogger<StartupChecks>>(), DestinationProblem);
                }
            }
        }

        static async Task<string?> ProbeWriteAsync(BlobCopyDestination blob, string setting, CancellationToken cancellationToken)
        {
            try
            {
                await blob.CheckWriteAsync(cancellationToken);
                return null;
            }
            catch (Exception ex) when (StorageErrors.Find(ex) is { } storage)
            {
                return storage.Status == 404
                    ? $"{setting}: container {blob.Container.Name} does not exist and this identity may not create it (infra creates it)."
                    : $"{setting}: this identity may not write into container {blob.Container.Name} ({StorageErrors.Describe(storage)}).";
            }
        }

        async Task CheckAsync(string setting, string what, Uri uri, Func<Task> check)
        {
            var endpoint = new Uri(uri, ".").GetLeftPart(UriPartial.Path).TrimEnd('/');
            try
            {
                await check();
            }
            catch (OperationCanceledException ex) when (timeout.IsCancellationRequested)
            {
                throw new StartupCheckException($"{setting}: {what} at {endpoint} could not be reached within {Timeout.TotalSeconds:F0} s.", ex);
            }
            catch (Exception ex) when (StorageErrors.Find(ex) is { Status: 0 } unreachable)
            {
                // The SDK's retries ran out before the timeout: no answer either way.
                throw new StartupCheckException($"{setting}: {what} at {endpoint} could not be reached ({StorageErrors.Describe(unreachable)}).", ex);
            }
            catch (Exception ex) when (StorageErrors.Find(ex) is { } storage)
            {
                throw new StartupCheckException($"{setting}: {what} at {endpoint} answered {StorageErrors.Describe(storage)}.", ex);
            }
        }
    }
}

internal static partial class StartupLog
{
    [LoggerMessage(70, LogLevel.Error, "The destination cannot be used: {Problem}")]
    public static partial void DestinationUnusable(ILogger logger, string problem);
}

/// <summary>A start-up check failed; the message names the setting and the endpoint, never a secret.</summary>
public sealed class StartupCheckException(string message, Exception inner) : Exception(message, inner);

/// <summary>How the executable starts: configuration checked, storage reached, then the host runs.</summary>
public static class BackupRelayApplication
{
    /// <summary>
    /// Runs the app, or writes one line per start-up problem to standard error and returns
    /// <see cref="ConfigurationCheck.ExitCode"/> (no stack trace).
    /// </summary>
    public static async Task<int> RunAsync(IHost app, Microsoft.Extensions.Configuration.IConfiguration configuration)
    {
        var problems = ConfigurationCheck.Problems(app.Services, configuration);
        if (problems.Count == 0)
        {
            try
            {
                await app.Services.GetRequiredService<StartupChecks>().StartAsync(CancellationToken.None);
            }
            catch (StartupCheckException ex)
            {
                problems = [ex.Message];
            }
        }

        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                await Console.Error.WriteLineAsync("BackupRelay cannot start: " + problem);
            }

            await Console.Error.WriteLineAsync($"({problems.Count} problem{(problems.Count == 1 ? "" : "s")}; exit code {ConfigurationCheck.ExitCode}. docs/configuration.md lists every setting.)");
            return ConfigurationCheck.ExitCode;
        }

        await app.RunAsync();
        return 0;
    }
}
