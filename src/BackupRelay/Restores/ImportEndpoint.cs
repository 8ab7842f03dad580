using BackupRelay.Configuration;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace BackupRelay.Restores;

/// <summary><c>POST /api/graphs/{graphId}/import</c>: import a GES backup from an OBS path; the run follows the GES job on <c>operation-poll</c>.</summary>
public sealed class ImportEndpoint(GesClient ges, RunStore runs, WorkQueues queues, IOptions<HttpOptions> http, IOptions<BackupOptions> backup,
    TimeProvider time)
{
    public async Task<IResult> HandleAsync(HttpContext context, string graphId)
    {
        var errors = new Dictionary<string, string[]>();
        HttpApi.CheckId(graphId, "graphId", errors);
        var (body, bodyProblem) = await HttpApi.ReadBodyAsync(context, http.Value, time, signed: true, RequestBodyJson.Default.ImportBody, errors);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var importPath = body!.ObsPath;

        JobIdResult job;
        try
        {
            job = await ges.ImportBackupAsync(graphId, importPath, context.RequestAborted);
        }
        catch (HuaweiCloudException ex)
        {
            return HttpApi.Upstream(ex);
        }

        var now = time.GetUtcNow();
        var run = RunRecord.NewImport("imp-" + Guid.NewGuid().ToString("N"), graphId, importPath, job.JobId, now, backup.Value.JobDeadline);
        return await HttpApi.FollowAsync(context, run, runs, queues, backup.Value);
    }
}
