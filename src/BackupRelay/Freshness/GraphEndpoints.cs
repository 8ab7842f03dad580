using BackupRelay.Http;
using BackupRelay.Messaging;
using Microsoft.AspNetCore.Http;

namespace BackupRelay.Freshness;

/// <summary><c>GET /api/graphs</c> and <c>GET /api/graphs/{graphId}</c>: each configured graph's freshness and last proven restore.</summary>
public sealed class GraphEndpoints(GraphStatusService graphs)
{
    /// <summary>Every configured graph: schedule, next occurrence, last run, last verified copy, freshness.</summary>
    /// <remarks>The statuses are computed once for every caller; a caller stops waiting when its request's bound runs out.</remarks>
    public async Task<IResult> ListAsync(CancellationToken cancellationToken) =>
        Results.Json([.. await graphs.GetAsync().WaitAsync(cancellationToken)], BackupRelayJson.Default.ListGraphStatus);

    public async Task<IResult> GetAsync(string graphId, CancellationToken cancellationToken)
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
