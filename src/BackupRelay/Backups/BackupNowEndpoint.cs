using BackupRelay.Configuration;
using BackupRelay.Http;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace BackupRelay.Backups;

/// <summary><c>POST /api/graphs/{graphId}/backups</c>: back a configured graph up now (same <c>Idempotency-Key</c>, same run).</summary>
public sealed class BackupNowEndpoint(RunStore runs, WorkQueues queues, IOptions<HttpOptions> http, IOptions<BackupOptions> backup, TimeProvider time)
{
    public async Task<IResult> HandleAsync(HttpContext context, string graphId)
    {
        var errors = new Dictionary<string, string[]>();
        HttpApi.CheckId(graphId, "graphId", errors);
        var key = HttpApi.IdempotencyKey(context, errors);
        var (_, bodyProblem) = await HttpApi.ReadBodyAsync(context, http.Value, time, signed: false, RequestBodyJson.Default.BackupNowBody, errors);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        if (backup.Value.Find(graphId) is null)
        {
            return TypedResults.Problem($"Graph {graphId} is not configured for backups (Backup__Graphs).", statusCode: 404, title: "Unknown graph");
        }

        var runId = HttpApi.RunId("http-", graphId, key);
        if (await runs.GetAsync(runId, context.RequestAborted) is { } existing)
        {
            return HttpApi.Accepted(context, existing);
        }

        // The start message goes first and the record after it, so a record never exists without a
        // message that will move it: if the send fails the caller gets 503 and no run; a retry with the
        // same key sends again. StartBackup creates the record itself when it comes first.
        await queues.SendStartAsync(new StartBackupMessage(MessageParser.CurrentVersion, runId, graphId, "http", null, Guid.NewGuid().ToString("N")), context.RequestAborted);
        var now = time.GetUtcNow();
        var (run, _) = await runs.CreateAsync(RunRecord.NewBackup(runId, graphId, "http", null, now, backup.Value.Find(graphId)!.JobDeadline ?? backup.Value.JobDeadline), context.RequestAborted);
        return HttpApi.Accepted(context, run);
    }
}
