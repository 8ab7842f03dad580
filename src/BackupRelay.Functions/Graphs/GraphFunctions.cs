using BackupRelay.Freshness;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace BackupRelay.Functions.Graphs;

/// <summary>The configured graphs: schedule, last run, last verified copy, freshness.</summary>
public sealed class GraphFunctions(GraphEndpoints graphs)
{
    /// <summary><c>GET /api/graphs</c>.</summary>
    [Function("ListGraphs")]
    public Task<IResult> ListGraphsAsync([HttpTrigger(AuthorizationLevel.Function, "get", Route = "graphs")] HttpRequest request) =>
        graphs.ListAsync(request.HttpContext.RequestAborted);

    /// <summary><c>GET /api/graphs/{graphId}</c>.</summary>
    [Function("GetGraph")]
    public Task<IResult> GetGraphAsync([HttpTrigger(AuthorizationLevel.Function, "get", Route = "graphs/{graphId}")] HttpRequest request, string graphId) =>
        graphs.GetAsync(graphId, request.HttpContext.RequestAborted);
}
