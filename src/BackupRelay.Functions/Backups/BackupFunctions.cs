using BackupRelay.Backups;
using BackupRelay.Configuration;
using BackupRelay.Copying;
using BackupRelay.Hosting;
using BackupRelay.Messaging;
using BackupRelay.Scheduling;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace BackupRelay.Functions.Backups;

/// <summary>A backup's path: the schedule (or a webhook) starts it, its job is polled, its files are copied.</summary>
public sealed class BackupFunctions(ScheduleBackupsHandler schedule, StartBackupHandler startBackup, PollBackupJobHandler pollBackupJob,
    CopyBackupFileHandler copyBackupFile, FunctionInvoker invoker, BackupNowEndpoint backupNow)
{
    /// <summary>One start per configured graph; the runtime fires it on one instance (<c>useMonitor</c>: a missed occurrence runs once, past due).</summary>
    [Function(FunctionNames.ScheduleBackups)]
    public Task ScheduleBackupsAsync([TimerTrigger("%Backup__Schedule%", UseMonitor = true)] TimerInfo timer, CancellationToken cancellationToken) =>
        schedule.HandleAsync(null, cancellationToken);

    [Function(FunctionNames.StartBackup)]
    public Task StartBackupAsync([QueueTrigger(QueueNames.StartBackup, Connection = BackupRelayServiceCollectionExtensions.AppStorageSetting)] string message,
        long dequeueCount, FunctionContext context, CancellationToken cancellationToken) =>
        invoker.RunAsync(startBackup, context.FunctionDefinition.Name, message, dequeueCount, cancellationToken);

    [Function(FunctionNames.PollBackupJob)]
    public Task PollBackupJobAsync([QueueTrigger(QueueNames.PollBackupJob, Connection = BackupRelayServiceCollectionExtensions.AppStorageSetting)] string message,
        long dequeueCount, FunctionContext context, CancellationToken cancellationToken) =>
        invoker.RunAsync(pollBackupJob, context.FunctionDefinition.Name, message, dequeueCount, cancellationToken);

    [Function(FunctionNames.CopyBackupFile)]
    public Task CopyBackupFileAsync([QueueTrigger(QueueNames.CopyBackupFile, Connection = BackupRelayServiceCollectionExtensions.AppStorageSetting)] string message,
        long dequeueCount, FunctionContext context, CancellationToken cancellationToken) =>
        invoker.RunAsync(copyBackupFile, context.FunctionDefinition.Name, message, dequeueCount, cancellationToken);

    /// <summary><c>POST /api/graphs/{graphId}/backups</c>: back up a configured graph now.</summary>
    [Function("BackupNow")]
    public Task<IResult> BackupNowAsync([HttpTrigger(AuthorizationLevel.Function, "post", Route = "graphs/{graphId}/backups")] HttpRequest request,
        string graphId) =>
        backupNow.HandleAsync(request.HttpContext, graphId);
}
