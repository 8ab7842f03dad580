using BackupRelay.Http;
using BackupRelay.Messaging;
using Microsoft.AspNetCore.Http;

namespace BackupRelay.Freshness;

/// <summary><c>GET /api/graphs</c> and <c>GET /api/graphs/{graphId}</c>: each configured graph's freshness and last proven restore.</summary>
public static class GraphEndpoints
{
    /// <summary>Every configured graph: schedule, next occurrence, last run, last verified copy, freshness.</summary>
    internal static async Task<IResult> ListAsync(GraphStatusService graphs) =>
        Results.Json([.. await graphs.GetAsync()], BackupRelayJson.Default.ListGraphStatus);

    internal static async Task<IResult> GetAsync(string graphId, GraphStatusService graphs)
    {
        var errors = new Dictionary<string, string[]>();
        HttpApi.CheckId(graphId, "graphId", errors);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        return (await graphs.GetAsync()).FirstOrDefault(g => g.GraphId == graphId) is { } status
            ? Results.Json(status, BackupRelayJson.Default.GraphStatus)
            : Results.Problem(statusCode: 404, title: "Graph not configured", detail: $"graphId {graphId} is not in Backup__Graphs.");
    }
}
