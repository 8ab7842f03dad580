using System.Text.Json;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>CSE: engine restore from a backup, engine status and engine jobs.</summary>
internal static class CseEndpoints
{
    public static void MapCse(this IEndpointRouteBuilder app)
    {
        app.MapPost("/cseengine/v1/engines/{engineId}/backups/{backupId}/recovery", RestoreAsync);
        app.MapGet("/v2/{projectId}/enginemgr/engines/{engineId}", ShowEngine);
        app.MapGet("/v2/{projectId}/enginemgr/engines/{engineId}/jobs/{jobId}", ShowJob);
    }

    private static async Task<IResult> RestoreAsync(HttpContext context, EmulatorState state, string engineId, string backupId)
    {
        // Seed page 004 marks both headers mandatory: Content-Type application/json (charset UTF-8 allowed), Accept application/json.
        var contentType = context.Request.ContentType ?? "";
        if (!contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return Responses.Cse(400, "CSE.00400001", "The header Content-Type must be application/json;charset=UTF-8.", "Content-Type");
        }

        if (!context.Request.Headers.Accept.Any(a => a is not null && (a.Contains("application/json", StringComparison.OrdinalIgnoreCase) || a.Contains("*/*", StringComparison.Ordinal))))
        {
            return Responses.Cse(400, "CSE.00400001", "The header Accept must be application/json.", "Accept");
        }

        JsonElement? body = null;
        try
        {
            using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            body = document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
        }

        lock (state.Sync)
        {
            var now = state.Now;
            if (FindEngine(context, state, engineId) is not { } engine)
            {
                return EngineNotFound(engineId);
            }

            var backup = engine.Backups.FirstOrDefault(b => b.Id == backupId);
            if (backup is null)
            {
                return Responses.Cse(400, "CSE.00404002", $"The backup {backupId} does not exist.", "backup_id");
            }

            var name = body is { } b && b.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            var description = body is { } d && d.TryGetProperty("description", out var x) && x.ValueKind == JsonValueKind.String ? x.GetString() : null;
            if (string.IsNullOrWhiteSpace(name))
            {
                return Responses.Cse(400, "CSE.00400001", "The parameter name is mandatory.", "name");
            }

            if (state.Restores.Any(r => r.EngineId == engineId && !r.IsTerminal(now)))
            {
                return Responses.Cse(400, "CSE.00400002", $"A restore of engine {engineId} is already in progress.", "engine_id");
            }

            var fault = context.Items.TryGetValue(Faults.JobFaultItem, out var f) ? (JobFault?)f : null;
            var restore = new Restore
            {
                Id = EmulatorState.NewId(),
                JobId = EmulatorState.NewId(),
                EngineId = engineId,
                BackupId = backup.Id,
                BackupName = backup.Name,
                Name = name,
                Description = description,
                StartedAt = now,
                PhaseSeconds = state.Settings.RestorePhaseSeconds,
                Outcome = fault is { Hangs: false } ? "RecoveringDataFailed" : engine.RestoreOutcome,
                Hangs = fault?.Hangs ?? false,
            };
            state.Restores.Add(restore);
            engine.LatestJobId = restore.JobId;
            return Responses.Json(ToDto(restore, now), CamelJson.Wire.RestoreRecordDto);
        }
    }

    private static IResult ShowEngine(HttpContext context, EmulatorState state, string projectId, string engineId)
    {
        lock (state.Sync)
        {
            if (RequestAuthentication.CheckProject(context, state, projectId) is { } denied)
            {
                return denied;
            }

            if (FindEngine(context, state, engineId) is not { } engine)
            {
                return EngineNotFound(engineId);
            }

            var now = state.Now;
            var latest = state.Restores.LastOrDefault(r => r.EngineId == engineId);
            var status = latest is null ? "Available" : latest.At(now).Status switch
            {
                "RecoveringData" or "RestartingService" => "Modifying",
                "Success" => "Available",
                "RestartingServiceFailed" => "Unavailable",
                _ => "Available",
            };
            return Responses.Json(new EngineDto(engine.Id, engine.Name, status, engine.LatestJobId, engine.ProjectId), SnakeJson.Wire.EngineDto);
        }
    }

    private static IResult ShowJob(HttpContext context, EmulatorState state, string projectId, string engineId, string jobId)
    {
        lock (state.Sync)
        {
            if (RequestAuthentication.CheckProject(context, state, projectId) is { } denied)
            {
                return denied;
            }

            if (FindEngine(context, state, engineId) is null)
            {
                return EngineNotFound(engineId);
            }

            var restore = state.Restores.FirstOrDefault(r => r.EngineId == engineId && r.JobId == jobId);
            if (restore is null)
            {
                return Responses.Cse(404, "CSE.00404003", $"The job {jobId} does not exist.", "job_id");
            }

            var now = state.Now;
            var (status, _, reason) = restore.At(now);
            var terminal = restore.IsTerminal(now);
            var jobStatus = !terminal ? "Executing" : status == "Success" ? "Finished" : "Error";
            var end = terminal ? Responses.GesTime(restore.StartedAt.AddSeconds(restore.PhaseSeconds * (status == "RecoveringDataFailed" ? 1 : 2))) : null;
            return Responses.Json(new EngineJobDto(restore.JobId, engineId, "Restore", jobStatus, Responses.GesTime(restore.StartedAt), end,
                reason.Length > 0 ? reason : null), SnakeJson.Wire.EngineJobDto);
        }
    }

    private static Engine? FindEngine(HttpContext context, EmulatorState state, string engineId)
    {
        var project = context.Items.TryGetValue(RequestAuthentication.ProjectItem, out var p) ? (string?)p : null;
        return state.Engines.TryGetValue(engineId, out var engine) && (project is null || engine.ProjectId == project) ? engine : null;
    }

    private static IResult EngineNotFound(string engineId) =>
        Responses.Cse(400, "CSE.00404001", $"The engine {engineId} does not exist.", "engine_id");

    public static RestoreRecordDto ToDto(Restore r, DateTimeOffset now)
    {
        var (status, progress, reason) = r.At(now);
        return new RestoreRecordDto(r.Id, r.Name, r.Description, r.EngineId, r.BackupId, r.BackupName, status, progress,
            (long)Math.Max(0, (now - r.StartedAt).TotalSeconds), reason);
    }
}
