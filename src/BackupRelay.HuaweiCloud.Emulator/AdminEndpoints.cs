namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>The emulator's own control API under <c>/_emulator</c>: state, seed, timing, clock, faults, request log.</summary>
internal static class AdminEndpoints
{
    public static void MapAdmin(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/_emulator");
        admin.MapGet("/state", (EmulatorState state) =>
        {
            lock (state.Sync)
            {
                state.Advance();
                var now = state.Now;
                var snapshot = new StateSnapshot(
                    now,
                    [.. state.Graphs.Values.Select(GesEndpoints.ToDto)],
                    [.. state.Backups.Select(b => GesEndpoints.ToDto(state, b))],
                    [.. state.Jobs.Values.OrderBy(j => j.CreatedAt).Select(j => GesEndpoints.ToDto(state, j))],
                    [.. state.Engines.Values.Select(e => new EngineDto(e.Id, e.Name, "Available", e.LatestJobId, e.ProjectId))],
                    [.. state.Restores.Select(r => CseEndpoints.ToDto(r, now))],
                    state.Tokens.Count(t => t.Value.ExpiresAt > now));
                return Responses.Json(snapshot, CamelJson.Wire.StateSnapshot);
            }
        });
        admin.MapPost("/reset", (EmulatorState state) =>
        {
            state.Reset();
            state.Clock.Reset();
            return TypedResults.NoContent();
        });
        admin.MapPost("/graphs", (EmulatorState state, SeedGraph graph) =>
        {
            if (string.IsNullOrWhiteSpace(graph.Id) || string.IsNullOrWhiteSpace(graph.Name) || string.IsNullOrWhiteSpace(graph.ProjectId))
            {
                return Results.Problem("id, name and projectId are required.", statusCode: 400);
            }

            lock (state.Sync)
            {
                return Responses.Json(GesEndpoints.ToDto(state.AddGraph(graph)), SnakeJson.Wire.GraphDto, 201);
            }
        });
        admin.MapPut("/graphs/{graphId}/status", (EmulatorState state, string graphId, GraphStatusRequest request) =>
        {
            lock (state.Sync)
            {
                if (!state.Graphs.TryGetValue(graphId, out var graph))
                {
                    return Results.NotFound();
                }

                graph.Status = request.Status;
                return Results.NoContent();
            }
        });
        admin.MapPost("/engines", (EmulatorState state, SeedEngine engine) =>
        {
            if (string.IsNullOrWhiteSpace(engine.Id) || string.IsNullOrWhiteSpace(engine.ProjectId))
            {
                return Results.Problem("id and projectId are required.", statusCode: 400);
            }

            state.AddEngine(engine);
            return Results.StatusCode(201);
        });
        admin.MapGet("/settings", (EmulatorState state) => Responses.Json(state.Settings, CamelJson.Wire.EmulatorSettings));
        admin.MapPut("/settings", (EmulatorState state, EmulatorSettings settings) =>
        {
            lock (state.Sync)
            {
                state.Settings = settings;
            }

            return Responses.Json(settings, CamelJson.Wire.EmulatorSettings);
        });
        admin.MapPost("/clock/advance", (EmulatorState state, ClockAdvanceRequest request) =>
        {
            state.Clock.Advance(TimeSpan.FromSeconds(request.Seconds));
            return Responses.Json(new ClockResponse(state.Now, state.Clock.Offset.TotalSeconds), CamelJson.Wire.ClockResponse);
        });
        admin.MapGet("/faults", (EmulatorState state) => Responses.Json(state.Faults.List(), CamelJson.Wire.ListFaultSpec));
        admin.MapPost("/faults", (EmulatorState state, FaultSpec fault) =>
        {
            if (!FaultSpec.Kinds.Contains(fault.Kind))
            {
                return Results.Problem($"kind must be one of {string.Join(", ", FaultSpec.Kinds)}.", statusCode: 400);
            }

            state.Faults.Add(fault);
            return Results.StatusCode(201);
        });
        admin.MapDelete("/faults", (EmulatorState state) =>
        {
            state.Faults.Clear();
            return Results.NoContent();
        });
        admin.MapGet("/requests", (EmulatorState state) => Responses.Json(state.RecordedRequests(), CamelJson.Wire.ListRecordedRequest));
        admin.MapDelete("/requests", (EmulatorState state) =>
        {
            state.ClearRequests();
            return Results.NoContent();
        });
    }
}
