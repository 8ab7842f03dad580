using BackupRelay.Http;
using BackupRelay.Messaging;
using Microsoft.AspNetCore.Http;

namespace BackupRelay.Freshness;

/// <summary><c>GET /api/graphs</c> and <c>GET /api/graphs/{graphId}</c>: each configured graph's freshness and last proven restore.</summary>
public static class GraphEndpoints
{
    /// <summary>Every configured graph: schedule, next occurrence, last run, last verified copy, freshness.</summary>
    /// <remarks>The statuses are computed once for every caller; a caller stops waiting when its request's bound runs out.</remarks>
    internal static async Task<IResult> ListAsync(GraphStatusService graphs, CancellationToken cancellationToken) =>
        Results.Json([.. await graphs.GetAsync().WaitAsync(cancellationToken)], BackupRelayJson.Default.ListGraphStatus);

    internal static async Task<IResult> GetAsync(string graphId, GraphStatusService graphs, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        HttpApi.CheckId(graphId, "graphId", errors);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        return (await graphs.GetAsync().WaitAsync(cancellationToken)).FirstOrDefault(g => g.GraphId == graphId) is { } status
            ? Results.Json(status, BackupRelayJson.Default.GraphStatus)
            : Results.Problem(statusCode: 404, title: "Graph not configured", detail: $"graphId {graphId} is not in Backup__Graphs.");
    }
}
