using BackupRelay.Configuration;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Cse;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace BackupRelay.Restores;

/// <summary><c>POST /api/engines/{engineId}/backups/{backupId}/restore</c>: restore a CSE engine from one of its backups; the run follows the CSE job on <c>operation-poll</c>.</summary>
public sealed class EngineRestoreEndpoint(CseClient cse, RunStore runs, WorkQueues queues, IOptions<HttpOptions> http, IOptions<BackupOptions> backup,
    TimeProvider time)
{
    public async Task<IResult> HandleAsync(HttpContext context, string engineId, string backupId)
    {
        var errors = new Dictionary<string, string[]>();
        HttpApi.CheckId(engineId, "engineId", errors);
        HttpApi.CheckId(backupId, "backupId", errors);
        var (body, bodyProblem) = await HttpApi.ReadBodyAsync(context, http.Value, time, signed: true, RequestBodyJson.Default.EngineRestoreBody, errors);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var now = time.GetUtcNow();
        var description = body!.Description;
        var name = body.Name ?? $"relay-{backupId[..Math.Min(8, backupId.Length)]}-{now.UtcDateTime:yyyyMMddHHmmss}";
        CseRestoreRecord record;
        CseEngine engine;
        try
        {
            record = await cse.RestoreAsync(engineId, backupId, name, description, context.RequestAborted);
            engine = await cse.GetEngineAsync(engineId, context.RequestAborted);
        }
        catch (HuaweiCloudException ex)
        {
            return HttpApi.Upstream(ex);
        }

        var run = RunRecord.NewEngineRestore("rst-" + Guid.NewGuid().ToString("N"), engineId, backupId, record.Id, record.Status, engine.LatestJobId,
            now, backup.Value.JobDeadline);

        return await HttpApi.FollowAsync(context, run, runs, queues, backup.Value);
    }
}
