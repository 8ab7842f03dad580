using System.Text.Json;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>GES v2 management APIs: backups, download links, import/export, graph start/stop, jobs.</summary>
internal static partial class GesEndpoints
{
    public static void MapGes(this IEndpointRouteBuilder app)
    {
        var v2 = app.MapGroup("/v2/{projectId}/graphs");
        v2.MapPost("/{graphId}/backups", AddBackup);
        v2.MapGet("/{graphId}/backups", ListGraphBackups);
        v2.MapGet("/backups", ListAllBackups);
        v2.MapDelete("/{graphId}/backups/{backupId}", DeleteBackup);
        v2.MapGet("/{graphId}/backup-files", BackupFiles);
        v2.MapPost("/{graphId}/backups/import", ImportBackup);
        v2.MapPost("/{graphId}/backups/export", ExportBackup);
        v2.MapGet("/{graphId}", ShowGraph);
        v2.MapPost("/{graphId}/start", StartGraph);
        v2.MapPost("/{graphId}/stop", StopGraph);
        v2.MapGet("/{graphId}/jobs/{jobId}/status", JobStatus);
        v2.MapGet("/jobs", ListJobs);
    }

    private static IResult AddBackup(HttpContext context, EmulatorState state, string projectId, string graphId)
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

            var now = state.Now;
            var backup = new Backup
            {
                Id = EmulatorState.NewId(),
                Name = EmulatorState.BackupName(graph, now, "manual"),
                GraphId = graph.Id,
                GraphName = graph.Name,
                ProjectId = graph.ProjectId,
                BackupMethod = "manual",
                StartTime = now,
                Files = [],
            };
            backup.Files.AddRange(EmulatorState.FilesFor(backup.Id, graph.BackupFileSizes ?? state.Settings.DefaultBackupFileSizes));
            state.Backups.Add(backup);
            var previous = graph.Status;
            graph.Status = "903";
            var job = state.NewJob(graph, "BackupGraph", "BackupGraph", (ok, at) =>
            {
                backup.Status = ok ? "success" : "failed";
                backup.EndTime = at;
                graph.Status = previous;
            }, JobFault(context));
            return Responses.Json(new AddBackupResponse(job.Id, state.Settings.AddBackupReturnsBackupId ? backup.Id : null),
                SnakeJson.Wire.AddBackupResponse);
        }
    }

    private static IResult ListGraphBackups(HttpContext context, EmulatorState state, string projectId, string graphId, string? offset, string? limit)
    {
        lock (state.Sync)
        {
            if (state.Graphs.TryGetValue(graphId, out var deleted) && deleted.Status == "400" && deleted.ProjectId == projectId)
            {
                return Responses.Ges(context, 404, "GES.0047", "Cluster does not exist or has been deleted.");
            }

            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            return Page(context, state, state.Backups.Where(b => b.GraphId == graph.Id), offset, limit);
        }
    }

    private static IResult ListAllBackups(HttpContext context, EmulatorState state, string projectId, string? offset, string? limit)
    {
        lock (state.Sync)
        {
            state.Advance();
            if (RequestAuthentication.CheckProject(context, state, projectId) is { } denied)
            {
                return denied;
            }

            return Page(context, state, state.Backups.Where(b => b.ProjectId == projectId), offset, limit);
        }
    }

    private static IResult Page(HttpContext context, EmulatorState state, IEnumerable<Backup> backups, string? offset, string? limit)
    {
        if (!TryPaging(offset, limit, out var skip, out var take))
        {
            return Responses.Ges(context, 400, "GES.0001", "The parameter offset or limit is invalid.");
        }

        var all = backups.ToList();
        var page = all.Skip(skip).Take(take).Select(b => ToDto(state, b)).ToList();
        return Responses.Json(new BackupListResponse(all.Count, page), SnakeJson.Wire.BackupListResponse);
    }

    private static IResult DeleteBackup(HttpContext context, EmulatorState state, string projectId, string graphId, string backupId)
    {
        lock (state.Sync)
        {
            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            var backup = state.Backups.FirstOrDefault(b => b.Id == backupId && b.GraphId == graph.Id);
            if (backup is null)
            {
                return Responses.Ges(context, 400, "GES.0001", $"The backup [{backupId}] does not exist.");
            }

            if (backup.Status == "backing_up")
            {
                return Responses.Ges(context, 400, "GES.7002", "The graph is being backed up.");
            }

            state.Backups.Remove(backup);
            return Responses.Json(new EmptyResponse(), SnakeJson.Wire.EmptyResponse);
        }
    }

    private static IResult BackupFiles(HttpContext context, EmulatorState state, string projectId, string graphId, string? backup_id)
    {
        lock (state.Sync)
        {
            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            if (string.IsNullOrEmpty(backup_id))
            {
                return Responses.Ges(context, 400, "GES.0001", "The parameter [backup_id] is mandatory.");
            }

            var backup = state.Backups.FirstOrDefault(b => b.Id == backup_id && b.GraphId == graph.Id);
            if (backup is null)
            {
                return Responses.Ges(context, 400, "GES.0001", $"The backup [{backup_id}] does not exist.");
            }

            if (backup.Status != "success")
            {
                return Responses.Ges(context, 400, "GES.0001", $"The backup [{backup_id}] is not available for download ({backup.Status}).");
            }

            var expires = state.Now.AddSeconds(state.Settings.LinkLifetimeSeconds);
            var baseUrl = state.Settings.ObsBaseUrl ?? $"{context.Request.Scheme}://{context.Request.Host}/obs";
            var files = backup.Files.Select(f => new BackupFileDto(
                f.Name,
                (f.Size + 1023) / 1024,
                ObsLinks.Create(baseUrl, state.Settings.Bucket, ObsLinks.Key(graph.Id, backup.Id, f.Name), expires),
                Responses.LinkExpiry(expires, state.Settings.LinkExpiredTimeFormat))).ToList();
            return Responses.Json(new BackupFilesResponse(state.Settings.Bucket, files), SnakeJson.Wire.BackupFilesResponse);
        }
    }

    private static async Task<IResult> ImportBackup(HttpContext context, EmulatorState state, string projectId, string graphId)
    {
        var body = await ReadBodyAsync(context);
        lock (state.Sync)
        {
            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            var importPath = body is { } b && b.TryGetProperty("import_path", out var p) && p.ValueKind == JsonValueKind.String
                ? p.GetString() : null;
            if (string.IsNullOrWhiteSpace(importPath))
            {
                return Responses.Camel(400, "GES.7049", "The parameter [import_path] is not exist.");
            }

            if (NotRunning(context, graph) is { } busy)
            {
                return busy;
            }

            var previous = graph.Status;
            graph.Status = "202";
            var job = state.NewJob(graph, "ImportBackup", "ImportBackup", null, JobFault(context));
            var sizes = graph.BackupFileSizes ?? state.Settings.DefaultBackupFileSizes;
            job.Detail = new() { ["import_path"] = importPath };
            Backup? source = null;
            if (state.Settings.ImportChecksObjects)
            {
                var (found, problem) = FindImportedBackup(state, importPath);
                source = found;
                if (problem is not null)
                {
                    job.Outcome = "failed";
                    job.FailReason = problem;
                }
            }

            job.EndCallbacks.Add((ok, at) =>
            {
                graph.Status = previous;
                if (ok)
                {
                    var id = EmulatorState.NewId();
                    state.Backups.Add(new Backup
                    {
                        Id = id,
                        Name = $"{graph.Name}_{at.UtcDateTime:yyyyMMddHHmmss}_import",
                        GraphId = graph.Id,
                        GraphName = graph.Name,
                        ProjectId = graph.ProjectId,
                        BackupMethod = "import",
                        Status = "success",
                        StartTime = job.RunningAt,
                        EndTime = at,
                        Files = source is null ? EmulatorState.FilesFor(id, sizes) : [.. source.Files],
                    });
                    job.Detail["backup_id"] = id;
                    if (source is not null)
                    {
                        job.Detail["source_backup_id"] = source.Id;
                    }
                }
            });
            return Responses.Json(new JobIdResponse(job.Id), SnakeJson.Wire.JobIdResponse);
        }
    }

    /// <summary>
    /// The backup whose files the import path holds (every one, by name, size and MD5), or why none:
    /// GES reads the files themselves, so a path that lacks one, or holds other bytes, fails the job.
    /// </summary>
    internal static (Backup? Backup, string? Problem) FindImportedBackup(EmulatorState state, string importPath)
    {
        var (bucket, prefix) = ObsStore.SplitPath(importPath);
        var objects = state.Obs.List(bucket, prefix);
        if (objects.Count == 0)
        {
            return (null, $"GES.7015: The import path {importPath} holds no backup files.");
        }

        var names = objects.Keys.Select(k => k[prefix.Length..]).ToHashSet(StringComparer.Ordinal);
        var candidate = state.Backups
            .Where(b => b.Status == "success" && b.Files.Count > 0)
            .OrderByDescending(b => b.Files.Count(f => names.Contains(f.Name)))
            .FirstOrDefault();
        if (candidate is null || !candidate.Files.Any(f => names.Contains(f.Name)))
        {
            return (null, $"GES.7015: The import path {importPath} does not hold the files of a graph backup.");
        }

        foreach (var file in candidate.Files)
        {
            if (!objects.TryGetValue(prefix + file.Name, out var stored))
            {
                return (null, $"GES.7015: Backup file {file.Name} is missing from the import path {importPath}.");
            }

            if (stored.Length != file.Size)
            {
                return (null, $"GES.7015: Backup file {file.Name} is {stored.Length} bytes in the import path; the backup's is {file.Size}.");
            }

            if (stored.Md5Hex != ObsEndpoints.ContentMd5(candidate.Id, file))
            {
                return (null, $"GES.7015: Backup file {file.Name} in the import path is damaged: its content does not match the backup.");
            }
        }

        return (candidate, null);
    }

    private static async Task<IResult> ExportBackup(HttpContext context, EmulatorState state, string projectId, string graphId)
    {
        var body = await ReadBodyAsync(context);
        lock (state.Sync)
        {
            if (Resolve(context, state, projectId, graphId, out var graph) is { } error)
            {
                return error;
            }

            string? Field(string name) => body is { } b && b.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            var backupId = Field("backup_id");
            var exportPath = Field("export_path");
            if (string.IsNullOrWhiteSpace(backupId) || string.IsNullOrWhiteSpace(exportPath))
            {
                return Responses.Ges(context, 400, "GES.0001", "The parameters [backup_id] and [export_path] are mandatory.");
            }

            if (!state.Backups.Any(b => b.Id == backupId && b.GraphId == graph.Id && b.Status == "success"))
            {
                return Responses.Ges(context, 400, "GES.0001", $"The backup [{backupId}] does not exist.");
            }

            var exported = state.Backups.Single(b => b.Id == backupId && b.GraphId == graph.Id);
            var job = state.NewJob(graph, "ExportBackup", "ExportBackup", (ok, _) =>
            {
                if (ok)
                {
                    state.WriteBackupToObs(exported, exportPath);
                }
            }, JobFault(context));
            return Responses.Json(new JobIdResponse(job.Id), SnakeJson.Wire.JobIdResponse);
        }
    }

    /// <summary>Advances jobs, then checks project access and finds the graph.</summary>
    private static IResult? Resolve(HttpContext context, EmulatorState state, string projectId, string graphId, out Graph graph)
    {
        state.Advance();
        graph = null!;
        if (RequestAuthentication.CheckProject(context, state, projectId) is { } denied)
        {
            return denied;
        }

        if (!state.Graphs.TryGetValue(graphId, out var found) || found.ProjectId != projectId || found.Status == "400")
        {
            return Responses.GraphNotFound(context);
        }

        graph = found;
        return null;
    }

    /// <summary>The error a graph answers with when it cannot take a new operation.</summary>
    private static IResult? NotRunning(HttpContext context, Graph graph) => graph.Status switch
    {
        "200" => null,
        "903" => Responses.Ges(context, 400, "GES.7002", "The graph is being backed up."),
        "901" => Responses.Ges(context, 400, "GES.7003", "The graph is being stopped."),
        "900" => Responses.Ges(context, 400, "GES.7015", "The graph has been stopped."),
        _ => Responses.Ges(context, 400, "GES.7001", $"The graph is not running (status {graph.Status})."),
    };

    private static bool TryPaging(string? offset, string? limit, out int skip, out int take)
    {
        skip = 0;
        take = 10;
        return (offset is null || (int.TryParse(offset, out skip) && skip >= 0))
            && (limit is null || (int.TryParse(limit, out take) && take is > 0 and <= 1000));
    }

    private static JobFault? JobFault(HttpContext context) =>
        context.Items.TryGetValue(Faults.JobFaultItem, out var fault) ? (JobFault?)fault : null;

    private static async Task<JsonElement?> ReadBodyAsync(HttpContext context)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static GraphDto ToDto(Graph g) =>
        new(g.Id, g.Name, g.Status, g.ProjectId, "1", "x86_64", g.DataStoreVersion, g.RestoredFromBackupId);

    public static BackupDto ToDto(EmulatorState state, Backup b)
    {
        var graphStatus = state.Graphs.TryGetValue(b.GraphId, out var g) ? g.Status : "400";
        return new BackupDto(b.Id, b.Name, b.BackupMethod, b.GraphId, b.GraphName, graphStatus, "1", g?.DataStoreVersion ?? "2.3.16", "x86_64",
            b.Status, b.StartTime.ToUnixTimeMilliseconds(), Responses.GesTime(b.StartTime), g?.ProductType ?? "InMemory",
            b.EndTime?.ToUnixTimeMilliseconds(), b.EndTime is { } e ? Responses.GesTime(e) : null,
            (b.TotalBytes + (1024 * 1024) - 1) / (1024 * 1024),
            b.DurationSeconds ?? (b.EndTime is { } end ? (long)(end - b.StartTime).TotalSeconds : 0),
            null);
    }

    public static JobDto ToDto(EmulatorState state, Job j) => new(
        j.Id, j.Status, j.JobType, j.JobName, j.GraphName,
        j.BeginTime is { } begin ? Responses.JobTime(begin, state.Settings.JobTimeFormat) : null,
        j.EndTime is { } end ? Responses.JobTime(end, state.Settings.JobTimeFormat) : null,
        0, j.Detail, Job.IsTerminal(j.Status) && j.Status != "success" ? j.FailReason : null);
}
