using BackupRelay.Runs;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace BackupRelay.Functions.Runs;

/// <summary>The run records: one by id (a status endpoint with <c>?wait=true</c>), or a filtered list.</summary>
public sealed class RunFunctions(RunEndpoints runs)
{
    /// <summary><c>GET /api/runs/{runId}[?wait=true]</c>.</summary>
    [Function("GetRun")]
    public Task<IResult> GetRunAsync([HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs/{runId}")] HttpRequest request, string runId) =>
        runs.GetAsync(request.HttpContext, runId, Query(request, "wait"));

    /// <summary><c>GET /api/runs?graphId=&amp;status=&amp;limit=</c>.</summary>
    [Function("ListRuns")]
    public Task<IResult> ListRunsAsync([HttpTrigger(AuthorizationLevel.Function, "get", Route = "runs")] HttpRequest request) =>
        runs.ListAsync(request.HttpContext, Query(request, "graphId"), Query(request, "status"), Query(request, "limit"));

    private static string? Query(HttpRequest request, string name) =>
        request.Query.TryGetValue(name, out var values) ? values.ToString() : null;
}
