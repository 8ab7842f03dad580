using System.Text.Json;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>GES graph lifecycle (show, start, stop) and jobs (status, list); the routes are in <c>GesEndpoints.cs</c>.</summary>
internal static partial class GesEndpoints
{
    private static IResult ShowGraph(HttpContext context, EmulatorState state, string projectId, string graphId)
    {
        lock (state.Sync)
        {
            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            return Responses.Json(new GraphResponse(ToDto(graph)), SnakeJson.Wire.GraphResponse);
        }
    }

    private static async Task<IResult> StartGraph(HttpContext context, EmulatorState state, string projectId, string graphId)
    {
        var body = await ReadBodyAsync(context);
        lock (state.Sync)
        {
            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            var backupId = body is { } b && b.TryGetProperty("graph_backup_id", out var v) && v.ValueKind == JsonValueKind.String
                ? v.GetString() : null;
            if (graph.Status != "900")
            {
                return Responses.Ges(context, 400, "GES.7001", "The graph is not stopped, so it cannot be started.");
            }

            if (backupId is not null && !state.Backups.Any(x => x.Id == backupId && x.GraphId == graph.Id && x.Status == "success"))
            {
                return Responses.Ges(context, 400, "GES.0001", $"The backup [{backupId}] does not exist.");
            }

            graph.Status = "920";
            var job = state.NewJob(graph, "StartGraph", "StartGraph", (ok, _) =>
            {
                graph.Status = ok ? "200" : "900";
                if (ok && backupId is not null)
                {
                    graph.RestoredFromBackupId = backupId;
                }
            }, JobFault(context));
            return Responses.Json(new JobIdResponse(job.Id), SnakeJson.Wire.JobIdResponse);
        }
    }

    private static IResult StopGraph(HttpContext context, EmulatorState state, string projectId, string graphId)
    {
        lock (state.Sync)
        {
            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            if (NotRunning(context, graph) is { } busy)
            {
                return busy;
            }

            graph.Status = "901";
            var job = state.NewJob(graph, "StopGraph", "StopGraph", (ok, _) => graph.Status = ok ? "900" : "200", JobFault(context));
            return Responses.Json(new JobIdResponse(job.Id), SnakeJson.Wire.JobIdResponse);
        }
    }

    private static IResult JobStatus(HttpContext context, EmulatorState state, string projectId, string graphId, string jobId)
    {
        lock (state.Sync)
        {
            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            if (!state.Jobs.TryGetValue(jobId, out var job) || job.GraphId != graph.Id)
            {
                return Responses.Ges(context, 400, "GES.7007", "The job does not exist.");
            }

            return Responses.Json(ToDto(state, job), SnakeJson.Wire.JobDto);
        }
    }

    private static IResult ListJobs(HttpContext context, EmulatorState state, string projectId, string? offset, string? limit,
        string? status, string? graph_name, string? start_time, string? end_time)
    {
        lock (state.Sync)
        {
            state.Advance();
            if (RequestAuthentication.CheckProject(context, state, projectId) is { } denied)
            {
                return denied;
            }

            if (!TryPaging(offset, limit, out var skip, out var take)
                || !TryDay(start_time, out var from) || !TryDay(end_time, out var to))
            {
                return Responses.Ges(context, 400, "GES.0001", "The query parameters are invalid.");
            }

            var jobs = state.Jobs.Values
                .Where(j => j.ProjectId == projectId)
                .Where(j => status is null || j.Status == status)
                .Where(j => graph_name is null || j.GraphName == graph_name)
                .Where(j => from is null || j.CreatedAt.UtcDateTime.Date >= from)
                .Where(j => to is null || j.CreatedAt.UtcDateTime.Date <= to)
                .OrderByDescending(j => j.CreatedAt)
                .ToList();
            return Responses.Json(new JobListResponse(jobs.Count, [.. jobs.Skip(skip).Take(take).Select(j => ToDto(state, j))]),
                SnakeJson.Wire.JobListResponse);
        }

        static bool TryDay(string? value, out DateTime? day)
        {
            day = null;
            if (value is null)
            {
                return true;
            }

            var ok = DateTime.TryParseExact(value, "yyyy-MM-dd", null, System.Globalization.DateTimeStyles.None, out var parsed);
            day = parsed;
            return ok;
        }
    }
}
