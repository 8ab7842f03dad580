using BackupRelay.Http;
using BackupRelay.HuaweiCloud;
using Microsoft.AspNetCore.Http;

namespace BackupRelay.Runs;

/// <summary><c>GET /api/runs/{runId}</c> and <c>GET /api/runs</c>: one run record, or the newest runs from the run index.</summary>
public sealed class RunEndpoints(RunStore runs)
{
    /// <summary>
    /// The run record. With <c>?wait=true</c> the status code follows the run, as a status endpoint
    /// should: 202 while it runs, 200 when it succeeded, 500 when it failed or partially failed — a
    /// failure is never a 2xx.
    /// </summary>
    public async Task<IResult> GetAsync(HttpContext context, string runId, string? wait)
    {
        var errors = new Dictionary<string, string[]>();
        if (!HuaweiCloudIds.IsValidId(runId))
        {
            errors["runId"] = ["runId must be a run id."];
        }

        // Query values are read as text and checked here, so a bad one is a problem naming it, not an empty 400.
        bool? waitFlag = wait switch
        {
            null => null,
            _ when bool.TryParse(wait, out var flag) => flag,
            _ => null,
        };
        if (wait is not null && waitFlag is null)
        {
            errors["wait"] = ["wait must be true or false."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        RunRecord? run;
        try
        {
            run = await runs.GetAsync(runId, context.RequestAborted);
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidDataException)
        {
            // Named, not a bare 500: the record exists and cannot be read (edited by hand, cut short, or written by a newer version).
            return TypedResults.Problem($"The record of run {runId} exists but cannot be read ({ex.GetType().Name}); it is left as it is for an operator to look at.",
                statusCode: 500, title: "Run record unreadable", type: "https://backuprelay/problems/run-record-unreadable",
                extensions: new Dictionary<string, object?> { ["runId"] = runId });
        }

        if (run is null)
        {
            return TypedResults.Problem($"Run {runId} does not exist.", statusCode: 404, title: "Unknown run");
        }

        if (waitFlag != true)
        {
            return Results.Json(run, RunRecordJson.Default.RunRecord);
        }

        return run.Status switch
        {
            RunStatus.Succeeded => Results.Json(run, RunRecordJson.Default.RunRecord),
            RunStatus.Failed or RunStatus.PartiallyFailed => TypedResults.Problem(
                detail: string.Join("; ", run.Errors.Select(e => e.Reason)), statusCode: 500, title: $"Run {run.Status}",
                type: "https://backuprelay/problems/run-failed",
                extensions: new Dictionary<string, object?> { ["runId"] = run.Id, ["status"] = run.Status.ToString() }),
            _ => HttpApi.Accepted(context, run),
        };
    }

    public async Task<IResult> ListAsync(HttpContext context, string? graphId, string? status, string? limit)
    {
        var errors = new Dictionary<string, string[]>();
        RunStatus? filter = null;
        if (status is not null)
        {
            // By name only: Enum.TryParse would also take "1".
            if (Enum.GetNames<RunStatus>().FirstOrDefault(n => string.Equals(n, status, StringComparison.OrdinalIgnoreCase)) is { } name)
            {
                filter = Enum.Parse<RunStatus>(name);
            }
            else
            {
                errors["status"] = [$"status must be one of {string.Join(", ", Enum.GetNames<RunStatus>())}."];
            }
        }

        if (graphId is not null && !HuaweiCloudIds.IsValidId(graphId))
        {
            errors["graphId"] = ["graphId must be a GES graph id."];
        }

        var count = HttpApi.QueryLimit(limit, 500, 50, errors);

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var list = await runs.ListAsync(graphId, filter, count, context.RequestAborted);
        return Results.Json(list, RunRecordJson.Default.ListRunRecord);
    }
}
