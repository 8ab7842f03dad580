using BackupRelay.Configuration;
using BackupRelay.Http;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Runs;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace BackupRelay.Restores;

public sealed class RestoreFromCopyEndpoint(RunStore runs, CopyRestores restores, GesClient ges, IOptions<HttpOptions> http, IOptions<BackupOptions> backup,
    IOptions<ObsOptions> obsOptions, TimeProvider time)
{
    /// <summary>
    /// <c>POST /api/graphs/{graphId}/restores</c>: bring a verified copy back — upload its files from the
    /// destination to OBS, then import them into the graph. The copy is checked here (manifest present,
    /// every file there, verified and matching it: 409 otherwise, nothing uploaded); the run then goes
    /// through the <c>restore-upload</c> queue and <c>PollOperation</c>. Same <c>Idempotency-Key</c>, same run.
    /// </summary>
    public async Task<IResult> HandleAsync(HttpContext context, string graphId)
    {
        var errors = new Dictionary<string, string[]>();
        HttpApi.CheckId(graphId, "graphId", errors);
        var key = HttpApi.IdempotencyKey(context, errors);

        var (body, bodyProblem) = await HttpApi.ReadBodyAsync(context, http.Value, time, signed: true, RequestBodyJson.Default.RestoreFromCopyBody, errors);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        var settings = obsOptions.Value;
        if (body is { ObsPath: null } && string.IsNullOrEmpty(settings.Bucket))
        {
            errors["obsPath"] = ["obsPath is required: no default bucket is configured (Obs__Bucket)."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var (backupId, sourceGraph, obsPath) = (body!.BackupId!, body.SourceGraph, body.NormalizedObsPath);
        var (acceptUnverified, acceptIncomplete) = (body.AcceptUnverified ?? false, body.AcceptIncomplete ?? false);

        if (!settings.IsConfigured)
        {
            return TypedResults.Problem("Restores from a copy write to OBS and need its credentials: set Obs__AccessKeyId and Obs__SecretAccessKey " +
                "(or HuaweiCloud__Auth__AccessKey/SecretKey) and Obs__Endpoint or HuaweiCloud__Region.", statusCode: 501, title: "Restores from a copy are not configured");
        }

        var digest = RequestDigest(graphId, backupId, sourceGraph, obsPath, acceptUnverified, acceptIncomplete);
        var runId = HttpApi.RunId("rfc-", graphId, key);
        if (await runs.GetAsync(runId, context.RequestAborted) is { } existing)
        {
            if (key.Length > 0 && existing.RequestDigest is { } earlier && earlier != digest)
            {
                return TypedResults.Problem($"Idempotency-Key {key} was used for run {existing.Id} with another request (backupId, sourceGraph, obsPath or what it accepts differ): " +
                    "use a new key for a new restore.", statusCode: 422, title: "Idempotency-Key reused",
                    extensions: new Dictionary<string, object?> { ["field"] = "Idempotency-Key", ["runId"] = existing.Id });
            }

            return HttpApi.Accepted(context, await restores.QueueUploadsAsync(existing, context.RequestAborted));
        }

        // The target graph must exist; its GES name is also where its own copies are when it has no configured Name.
        GesGraph target;
        try
        {
            target = await ges.GetGraphAsync(graphId, context.RequestAborted);
        }
        catch (HuaweiCloudException ex)
        {
            return HttpApi.Upstream(ex);
        }

        var folder = sourceGraph ?? backup.Value.CopyFolder(graphId, target.Name);
        obsPath ??= $"{settings.Bucket}/{settings.Prefix}{folder}/{backupId}/";
        var start = await restores.StartAsync(new CopyRestoreRequest(runId, RunKind.RestoreFromCopy, "http", graphId, null, folder, backupId, obsPath,
            acceptUnverified, digest, AcceptIncomplete: acceptIncomplete), context.RequestAborted);
        return start switch
        {
            CopyRestoreStart.Started started => HttpApi.Accepted(context, started.Run),
            CopyRestoreStart.TargetBusy busy => TypedResults.Problem(
                $"A restore into graph {graphId} is running (run {busy.HolderRunId}): wait for it to end (GET /api/runs/{busy.HolderRunId}).",
                statusCode: 409, title: "A restore into this graph is running", type: "https://backuprelay/problems/restore-running",
                extensions: new Dictionary<string, object?> { ["runId"] = busy.HolderRunId }),
            CopyRestoreStart.Refused refused => TypedResults.Problem(refused.Reason, statusCode: 409, title: "The copy cannot be restored",
                type: "https://backuprelay/problems/copy-not-restorable",
                extensions: new Dictionary<string, object?> { ["graph"] = folder, ["backupId"] = backupId }),
            _ => throw new InvalidOperationException(start.ToString()),
        };
    }

    /// <summary>What a restore request asked for, as one digest (the fields as given, before defaults).</summary>
    private static string RequestDigest(string graphId, string? backupId, string? sourceGraph, string? obsPath, bool acceptUnverified, bool acceptIncomplete) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            string.Join('\n', new[] { graphId, backupId ?? "", sourceGraph ?? "", obsPath ?? "", acceptUnverified ? "accept-unverified" : "" }
                .Concat(acceptIncomplete ? ["accept-incomplete"] : [])))));
}
