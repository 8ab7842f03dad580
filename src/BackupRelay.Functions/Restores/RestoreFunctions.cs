using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud.Cse;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Restores;
using BackupRelay.Runs;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Options;

namespace BackupRelay.Functions.Restores;

/// <summary>
/// Bringing data back: a CSE engine from its backup, a GES backup imported from OBS, a graph from its
/// copy in Azure (uploaded to OBS, then imported); the operations they start are polled to the end.
/// </summary>
public sealed class RestoreFunctions(UploadToObsHandler uploadToObs, BackupRelay.Operations.PollOperationHandler pollOperation, FunctionInvoker invoker, CseClient cse, GesClient ges, RunStore runs, WorkQueues queues,
    CopyRestores restores, IOptions<HttpOptions> http, IOptions<BackupOptions> backup, IOptions<ObsOptions> obs, TimeProvider time)
{
    /// <summary><c>POST /api/engines/{engineId}/backups/{backupId}/recovery</c>: restore a CSE engine.</summary>
    [Function("RestoreEngine")]
    public Task<IResult> RestoreEngineAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "engines/{engineId}/backups/{backupId}/recovery")] HttpRequest request,
        string engineId, string backupId) =>
        EngineRestoreEndpoint.HandleAsync(request.HttpContext, engineId, backupId, cse, runs, queues, http, backup, time);

    /// <summary><c>POST /api/graphs/{graphId}/backups/import</c>: import a GES backup from OBS.</summary>
    [Function("ImportBackup")]
    public Task<IResult> ImportBackupAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "graphs/{graphId}/backups/import")] HttpRequest request, string graphId) =>
        ImportEndpoint.HandleAsync(request.HttpContext, graphId, ges, runs, queues, http, backup, time);

    /// <summary><c>POST /api/graphs/{graphId}/restores</c>: restore a graph from its verified copy in Azure.</summary>
    [Function("RestoreFromCopy")]
    public Task<IResult> RestoreFromCopyAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "graphs/{graphId}/restores")] HttpRequest request, string graphId) =>
        RestoreFromCopyEndpoint.HandleAsync(request.HttpContext, graphId, runs, restores, ges, http, backup, obs, time);

    [Function(FunctionNames.UploadToObs)]
    public Task UploadToObsAsync([QueueTrigger(QueueNames.UploadToObs, Connection = BackupRelayServiceCollectionExtensions.AppStorageSetting)] string message,
        long dequeueCount, FunctionContext context, CancellationToken cancellationToken) =>
        invoker.RunAsync(uploadToObs, context.FunctionDefinition.Name, message, dequeueCount, cancellationToken);

    [Function(FunctionNames.PollOperation)]
    public Task PollOperationAsync([QueueTrigger(QueueNames.PollOperation, Connection = BackupRelayServiceCollectionExtensions.AppStorageSetting)] string message,
        long dequeueCount, FunctionContext context, CancellationToken cancellationToken) =>
        invoker.RunAsync(pollOperation, context.FunctionDefinition.Name, message, dequeueCount, cancellationToken);
}
