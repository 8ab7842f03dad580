using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Azure.Functions.Worker.Grpc.Messages;
using NCrontab;

namespace BackupRelay.LocalHost;

/// <summary>
/// A timer trigger with the runtime's rules: NCRONTAB (UTC) from the binding's schedule (a <c>%Setting%</c>
/// resolved from the app settings); one instance fires, the one holding the blob lease
/// <c>azure-webjobs-hosts/locks/{hostId}/{function}.Listener</c>; with <c>useMonitor</c> the last and next
/// occurrences are kept in <c>timers/{hostId}/{function}/status</c>, so a missed occurrence runs once at
/// start with <c>IsPastDue = true</c>; <c>runOnStartup</c> when the host is asked to.
/// </summary>
public sealed partial class TimerTriggerListener(LocalFunctionsHost host, FunctionEntry function, ILogger<TimerTriggerListener> logger)
{
    private static readonly TimeSpan LeasePeriod = TimeSpan.FromSeconds(15);

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var expression = function.Property("schedule")!;
        if (expression.StartsWith('%') && expression.EndsWith('%'))
        {
            expression = host.Setting(expression.Trim('%')) ?? throw new InvalidOperationException($"{function.Name}: the setting {expression} is missing");
        }

        var schedule = CrontabSchedule.Parse(expression, new CrontabSchedule.ParseOptions { IncludingSeconds = expression.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 6 });
        var useMonitor = function.Trigger["useMonitor"]?.GetValue<bool>() ?? true;
        var container = new BlobContainerClient(host.Setting("AzureWebJobsStorage")!, "azure-webjobs-hosts", new BlobClientOptions(StorageVersions.Blob));
        var lockBlob = container.GetBlobClient($"locks/{host.Options.HostId}/{function.Name}.Listener");
        var status = container.GetBlobClient($"timers/{host.Options.HostId}/{function.Name}/status");
        var startup = host.Options.TimersRunOnStartup || (function.Trigger["runOnStartup"]?.GetValue<bool>() ?? false);

        while (!stoppingToken.IsCancellationRequested)
        {
            var lease = await AcquireAsync(container, lockBlob, stoppingToken);
            if (lease is null)
            {
                await Delay(LeasePeriod / 3, stoppingToken);
                continue;
            }

            Log.Holding(logger, function.Name);
            using var held = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var renewing = RenewAsync(lease, held);
            try
            {
                await ScheduleAsync(schedule, useMonitor, status, startup, held.Token);
                startup = false;
            }
            finally
            {
                await held.CancelAsync();
                await renewing;
                // Released on the way out, so another instance takes the timer at once (best effort: a lost lease expires by itself).
                await ((Task)lease.ReleaseAsync(cancellationToken: CancellationToken.None)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task ScheduleAsync(CrontabSchedule schedule, bool useMonitor, BlobClient status, bool startup, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var last = useMonitor ? await ReadStatusAsync(status, cancellationToken) : null;
        if (startup)
        {
            await FireAsync(last?.Last, Next(schedule, now), isPastDue: false, status, useMonitor, cancellationToken);
        }
        else if (last is { Next: var missed } && missed < now)
        {
            // The occurrence passed while no instance ran: once, past due.
            await FireAsync(last.Last, Next(schedule, now), isPastDue: true, status, useMonitor, cancellationToken);
        }
        else if (useMonitor && last is null)
        {
            await WriteStatusAsync(status, new TimerStatus(null, Next(schedule, now), now), cancellationToken);
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            var next = Next(schedule, DateTimeOffset.UtcNow);
            var wait = next - DateTimeOffset.UtcNow;
            if (wait > TimeSpan.Zero && !await Delay(wait, cancellationToken))
            {
                return;
            }

            await FireAsync(next, Next(schedule, next), isPastDue: false, status, useMonitor, cancellationToken);
        }
    }

    private async Task FireAsync(DateTimeOffset? last, DateTimeOffset next, bool isPastDue, BlobClient status, bool useMonitor, CancellationToken cancellationToken)
    {
        var info = TimerInfo(last, next, isPastDue);
        try
        {
            var response = await host.InvokeAsync(function.Name, request =>
                request.InputData.Add(new ParameterBinding { Name = function.BindingName, Data = new TypedData { Json = info } }), cancellationToken);
            if (response.Result.Status != StatusResult.Types.Status.Success)
            {
                // As the runtime: a failed timer run is not retried; the next occurrence comes.
                Log.Failed(logger, function.Name, response.Result.Exception?.Message ?? "");
            }
        }
        catch (Exception ex) when (ex is WorkerGoneException or TimeoutException or OperationCanceledException)
        {
            Log.Failed(logger, function.Name, ex.Message);
        }

        if (useMonitor && !cancellationToken.IsCancellationRequested)
        {
            await WriteStatusAsync(status, new TimerStatus(DateTimeOffset.UtcNow, next, DateTimeOffset.UtcNow), CancellationToken.None);
        }
    }

    /// <summary>The timer trigger's payload, as the runtime sends it (the worker binds it to <c>TimerInfo</c>).</summary>
    internal static string TimerInfo(DateTimeOffset? last, DateTimeOffset next, bool isPastDue) => new JsonObject
    {
        ["Schedule"] = new JsonObject { ["AdjustForDST"] = true },
        ["ScheduleStatus"] = new JsonObject { ["Last"] = (last ?? DateTimeOffset.MinValue).ToString("O"), ["Next"] = next.ToString("O"), ["LastUpdated"] = DateTimeOffset.UtcNow.ToString("O") },
        ["IsPastDue"] = isPastDue,
    }.ToJsonString();

    private static DateTimeOffset Next(CrontabSchedule schedule, DateTimeOffset after) =>
        new(DateTime.SpecifyKind(schedule.GetNextOccurrence(after.UtcDateTime), DateTimeKind.Utc));

    private sealed record TimerStatus(DateTimeOffset? Last, DateTimeOffset Next, DateTimeOffset LastUpdated);

    private static async Task<TimerStatus?> ReadStatusAsync(BlobClient status, CancellationToken cancellationToken)
    {
        try
        {
            var content = await status.DownloadContentAsync(cancellationToken);
            return JsonSerializer.Deserialize<TimerStatus>(content.Value.Content.ToString());
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    private async Task WriteStatusAsync(BlobClient status, TimerStatus value, CancellationToken cancellationToken)
    {
        try
        {
            await status.UploadAsync(BinaryData.FromString(JsonSerializer.Serialize(value)), overwrite: true, cancellationToken);
        }
        catch (RequestFailedException ex)
        {
            Log.StatusFailed(logger, function.Name, ex.Status);
        }
    }

    private async Task<BlobLeaseClient?> AcquireAsync(BlobContainerClient container, BlobClient lockBlob, CancellationToken cancellationToken)
    {
        try
        {
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            if (!await lockBlob.ExistsAsync(cancellationToken))
            {
                await ((Task)lockBlob.UploadAsync(BinaryData.FromString(""), overwrite: false, cancellationToken)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            var lease = lockBlob.GetBlobLeaseClient();
            await lease.AcquireAsync(LeasePeriod, cancellationToken: cancellationToken);
            return lease;
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
            return null; // another instance holds the timer
        }
        catch (RequestFailedException ex)
        {
            Log.LockFailed(logger, function.Name, ex.Status);
            return null;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private async Task RenewAsync(BlobLeaseClient lease, CancellationTokenSource held)
    {
        while (!held.IsCancellationRequested)
        {
            if (!await Delay(LeasePeriod / 3, held.Token))
            {
                return;
            }

            try
            {
                await lease.RenewAsync(cancellationToken: held.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (RequestFailedException ex)
            {
                // Lost the lease: another instance may take the timer now; stop firing here.
                Log.LockFailed(logger, function.Name, ex.Status);
                await held.CancelAsync();
                return;
            }
        }
    }

    private static async Task<bool> Delay(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1040, LogLevel.Information, "{Function}: this instance holds the timer")]
        public static partial void Holding(ILogger logger, string function);

        [LoggerMessage(1041, LogLevel.Error, "{Function}: the timer run failed: {Reason}")]
        public static partial void Failed(ILogger logger, string function, string reason);

        [LoggerMessage(1042, LogLevel.Warning, "{Function}: the timer lock answered {Status}")]
        public static partial void LockFailed(ILogger logger, string function, int status);

        [LoggerMessage(1043, LogLevel.Warning, "{Function}: the timer status could not be written ({Status})")]
        public static partial void StatusFailed(ILogger logger, string function, int status);
    }
}
