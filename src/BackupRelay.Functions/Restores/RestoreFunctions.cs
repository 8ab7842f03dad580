using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.Messaging;
using BackupRelay.Restores;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace BackupRelay.Functions.Restores;

/// <summary>
/// Bringing data back: a CSE engine from its backup, a GES backup imported from OBS, a graph from its
/// copy in Azure (uploaded to OBS, then imported); the operations they start are polled to the end.
/// </summary>
public sealed class RestoreFunctions(UploadToObsHandler uploadToObs, BackupRelay.Operations.PollOperationHandler pollOperation, FunctionInvoker invoker,
    EngineRestoreEndpoint engineRestore, ImportEndpoint import, RestoreFromCopyEndpoint restoreFromCopy)
{
    /// <summary><c>POST /api/engines/{engineId}/backups/{backupId}/recovery</c>: restore a CSE engine.</summary>
    [Function("RestoreEngine")]
    public Task<IResult> RestoreEngineAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "engines/{engineId}/backups/{backupId}/recovery")] HttpRequest request,
        string engineId, string backupId) =>
        engineRestore.HandleAsync(request.HttpContext, engineId, backupId);

    /// <summary><c>POST /api/graphs/{graphId}/backups/import</c>: import a GES backup from OBS.</summary>
    [Function("ImportBackup")]
    public Task<IResult> ImportBackupAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "graphs/{graphId}/backups/import")] HttpRequest request, string graphId) =>
        import.HandleAsync(request.HttpContext, graphId);

    /// <summary><c>POST /api/graphs/{graphId}/restores</c>: restore a graph from its verified copy in Azure.</summary>
    [Function("RestoreFromCopy")]
    public Task<IResult> RestoreFromCopyAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "graphs/{graphId}/restores")] HttpRequest request, string graphId) =>
        restoreFromCopy.HandleAsync(request.HttpContext, graphId);

    [Function(FunctionNames.UploadToObs)]
    public Task UploadToObsAsync([QueueTrigger(QueueNames.UploadToObs, Connection = BackupRelayServiceCollectionExtensions.AppStorageSetting)] string message,
        long dequeueCount, FunctionContext context, CancellationToken cancellationToken) =>
        invoker.RunAsync(uploadToObs, context.FunctionDefinition.Name, message, dequeueCount, cancellationToken);

    [Function(FunctionNames.PollOperation)]
    public Task PollOperationAsync([QueueTrigger(QueueNames.PollOperation, Connection = BackupRelayServiceCollectionExtensions.AppStorageSetting)] string message,
        long dequeueCount, FunctionContext context, CancellationToken cancellationToken) =>
        invoker.RunAsync(pollOperation, context.FunctionDefinition.Name, message, dequeueCount, cancellationToken);
}
