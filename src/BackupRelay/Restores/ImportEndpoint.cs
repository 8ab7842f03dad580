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
        var (body, bodyProblem) = await HttpApi.ReadBodyAsync(context, http.Value, time, signed: true);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        var raw = HttpApi.OptionalString(body, "import_path", 1024, errors);
        string? importPath = null;
        if (raw is null && !errors.ContainsKey("import_path"))
        {
            errors["import_path"] = ["import_path is required: an OBS path such as obs://bucket/path/ or bucket/path/."];
        }
        else if (raw is not null && !HttpApi.TryObsPath(raw, out importPath))
        {
            errors["import_path"] = ["import_path must be an OBS path: obs://bucket/path/ or bucket/path/ (bucket: 3-63 of a-z, 0-9, '-', '.')."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        JobIdResult job;
        try
        {
            job = await ges.ImportBackupAsync(graphId, importPath!, context.RequestAborted);
        }
        catch (HuaweiCloudException ex)
        {
            return HttpApi.Upstream(ex);
        }

        var now = time.GetUtcNow();
        var run = RunRecord.NewImport("imp-" + Guid.NewGuid().ToString("N"), graphId, importPath!, job.JobId, now, backup.Value.JobDeadline);
        return await HttpApi.FollowAsync(context, run, runs, queues, backup.Value);
    }
}
