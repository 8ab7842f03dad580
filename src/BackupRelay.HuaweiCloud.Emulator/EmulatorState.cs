using System.Security.Cryptography;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// Everything the emulator knows, behind one lock. Jobs advance lazily: every request first
/// calls <see cref="Advance"/>, which moves jobs whose time has come and applies their effects.
/// </summary>
public sealed class EmulatorState : IDisposable
{
    private readonly EmulatorSeed _seed;
    private readonly List<RecordedRequest> _requests = [];

    public EmulatorState(EmulatorSeed seed, EmulatorClock clock)
    {
        _seed = seed;
        Clock = clock;
        Reset();
    }

    public object Sync { get; } = new();

    /// <summary>Deletes what OBS wrote to disk.</summary>
    public void Dispose() => Obs.Dispose();
    public EmulatorClock Clock { get; }
    public EmulatorSettings Settings { get; set; } = new();
    public Dictionary<string, SeedProject> Projects { get; } = [];
    public Dictionary<string, SeedUser> Users { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, SeedKeyPair> KeyPairs { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, Graph> Graphs { get; } = [];
    public List<Backup> Backups { get; } = [];
    public Dictionary<string, Job> Jobs { get; } = [];
    public Dictionary<string, Engine> Engines { get; } = [];
    public List<Restore> Restores { get; } = [];
    public Dictionary<string, IssuedToken> Tokens { get; } = new(StringComparer.Ordinal);

    /// <summary>Consecutive failed AK/SK authentications and lock-out end, per access key.</summary>
    public Dictionary<string, (int Failures, DateTimeOffset LockedUntil)> KeyFailures { get; } = [];

    public FaultInjector Faults { get; } = new();

    /// <summary>Objects and multipart uploads written through OBS's S3 API.</summary>
    public ObsStore Obs { get; } = new();

    /// <summary>The API gateway's per-project GES request budget (<see cref="EmulatorSettings.GesRequestsPerSecond"/>).</summary>
    public ProjectRateLimiter GesRateLimiter { get; } = new();

    private long _throttled;

    /// <summary>GES requests answered 429 by the gateway's rate limit.</summary>
    public long Throttled => Interlocked.Read(ref _throttled);

    public void CountThrottled() => Interlocked.Increment(ref _throttled);

    public DateTimeOffset Now => Clock.GetUtcNow();

    /// <summary>Back to the seed: resources, settings, tokens, faults and the request log.</summary>
    public void Reset()
    {
        lock (Sync)
        {
            Settings = _seed.Settings.Clone();
            Settings.DefaultBackupFileSizes = [.. _seed.Settings.DefaultBackupFileSizes];
            Settings.Buckets = [.. _seed.Settings.Buckets];
            Obs.Clear();
            Projects.Clear();
            Users.Clear();
            KeyPairs.Clear();
            Graphs.Clear();
            Backups.Clear();
            Jobs.Clear();
            Engines.Clear();
            Restores.Clear();
            Tokens.Clear();
            KeyFailures.Clear();
            Faults.Clear();
            ClearRequests();
            foreach (var p in _seed.Projects)
            {
                Projects[p.Id] = p;
            }

            foreach (var u in _seed.Users)
            {
                Users[u.Domain + "/" + u.Name] = u;
            }

            foreach (var k in _seed.KeyPairs)
            {
                KeyPairs[k.AccessKey] = k;
            }

            foreach (var g in _seed.Graphs)
            {
                AddGraph(g);
            }

            foreach (var e in _seed.Engines)
            {
                AddEngine(e);
            }
        }
    }

    public Graph AddGraph(SeedGraph seed)
    {
        lock (Sync)
        {
            var graph = new Graph
            {
                Id = seed.Id,
                Name = seed.Name,
                ProjectId = seed.ProjectId,
                Status = seed.Status,
                DataStoreVersion = seed.DataStoreVersion,
                ProductType = seed.ProductType,
                BackupFileSizes = seed.BackupFileSizes,
            };
            Graphs[graph.Id] = graph;
            foreach (var b in seed.Backups)
            {
                var start = b.StartTime ?? Now.AddDays(-1);
                Backups.Add(new Backup
                {
                    Id = b.Id,
                    Name = b.Name ?? BackupName(graph, start, b.BackupMethod),
                    GraphId = graph.Id,
                    GraphName = graph.Name,
                    ProjectId = graph.ProjectId,
                    BackupMethod = b.BackupMethod,
                    Status = "success",
                    StartTime = start,
                    EndTime = b.EndTime ?? start.AddSeconds(b.DurationSeconds),
                    DurationSeconds = b.DurationSeconds,
                    Files = FilesFor(b.Id, b.FileSizes ?? graph.BackupFileSizes ?? Settings.DefaultBackupFileSizes),
                });
            }

            return graph;
        }
    }

    public Engine AddEngine(SeedEngine seed)
    {
        lock (Sync)
        {
            var engine = new Engine
            {
                Id = seed.Id,
                Name = seed.Name,
                ProjectId = seed.ProjectId,
                Backups = [.. seed.Backups],
                RestoreOutcome = seed.RestoreOutcome,
            };
            Engines[engine.Id] = engine;
            return engine;
        }
    }

    public static string BackupName(Graph graph, DateTimeOffset start, string method) => method == "auto"
        ? $"{graph.Name}_{start.UtcDateTime:yyyyMMddHHmmss}_auto"
        : $"{graph.Name}-{start.UtcDateTime:yyyyMMddHHmmss}";

    public static List<BackupFile> FilesFor(string backupId, IReadOnlyList<long> sizes)
    {
        var prefix = backupId.Replace("-", "", StringComparison.Ordinal);
        return [.. sizes.Select((size, i) => new BackupFile($"{prefix}br{i + 1:00}.tar", size))];
    }

    /// <summary>Creates a job that goes pending → running → its outcome on the configured timing.</summary>
    public Job NewJob(Graph graph, string jobType, string jobName, Action<bool, DateTimeOffset>? onEnd, JobFault? fault)
    {
        var now = Now;
        var running = now.AddSeconds(Settings.JobPendingSeconds);
        var job = new Job
        {
            Id = NewHexId(),
            ProjectId = graph.ProjectId,
            GraphId = graph.Id,
            GraphName = graph.Name,
            JobType = jobType,
            JobName = jobName,
            CreatedAt = now,
            RunningAt = running,
            EndsAt = running.AddSeconds(Settings.JobRunningSeconds),
        };
        if (onEnd is not null)
        {
            job.EndCallbacks.Add(onEnd);
        }

        if (fault is not null)
        {
            job.Hangs = fault.Hangs;
            job.Outcome = fault.Outcome;
            job.FailReason = fault.Reason;
        }

        Jobs[job.Id] = job;
        return job;
    }

    /// <summary>Moves every job whose time has come. Call under <see cref="Sync"/>.</summary>
    public void Advance()
    {
        var now = Now;
        foreach (var job in Jobs.Values)
        {
            if (Job.IsTerminal(job.Status))
            {
                continue;
            }

            if (job.Status == "pending" && now >= job.RunningAt)
            {
                job.Status = "running";
                job.BeginTime = job.RunningAt;
            }

            if (job.Status == "running" && now >= job.EndsAt && !job.Hangs)
            {
                job.Status = job.Outcome;
                job.EndTime = job.EndsAt;
                if (job.Outcome != "success")
                {
                    job.FailReason ??= "The job failed in the graph engine.";
                }

                foreach (var callback in job.EndCallbacks)
                {
                    callback(job.Outcome == "success", job.EndsAt);
                }
            }
        }
    }

    /// <summary>
    /// Writes every file of <paramref name="backup"/> under an OBS path (<c>bucket/prefix/</c>), as an
    /// export does: what an import of that path then finds. Call under <see cref="Sync"/>.
    /// </summary>
    public void WriteBackupToObs(Backup backup, string path)
    {
        var (bucket, prefix) = ObsStore.SplitPath(path);
        foreach (var file in backup.Files)
        {
            var md5 = ObsEndpoints.ContentMd5(backup.Id, file);
            Obs.Objects[(bucket, prefix + file.Name)] = new StoredObject(new GeneratedBytes(BackupContent.Seed(backup.Id, file.Name), file.Size), md5,
                $"\"{md5}\"", new Dictionary<string, string>(), Now);
        }
    }

    public void Record(RecordedRequest request)
    {
        lock (_requests)
        {
            if (_requests.Count < 200_000)
            {
                _requests.Add(request);
            }
        }
    }

    private readonly Dictionary<(string Method, string Path), (int Now, int Max)> _concurrent = [];

    /// <summary>A request to <paramref name="path"/> began: counts it as open until <see cref="Ended"/>.</summary>
    public void Began(string method, string path)
    {
        lock (_concurrent)
        {
            var (now, max) = _concurrent.GetValueOrDefault((method, path));
            _concurrent[(method, path)] = (now + 1, Math.Max(max, now + 1));
        }
    }

    public void Ended(string method, string path)
    {
        lock (_concurrent)
        {
            var (now, max) = _concurrent.GetValueOrDefault((method, path));
            _concurrent[(method, path)] = (Math.Max(0, now - 1), max);
        }
    }

    /// <summary>Most requests to one method and path this emulator has had open at once (what a server would see of a client's concurrency).</summary>
    /// <summary>Requests being answered now whose method and path match (a request leaves this count once it is recorded).</summary>
    public int InFlight(Func<string, string, bool> match)
    {
        lock (_concurrent)
        {
            return _concurrent.Where(c => match(c.Key.Method, c.Key.Path)).Sum(c => c.Value.Now);
        }
    }

    public int MaxConcurrent(string method, string path)
    {
        lock (_concurrent)
        {
            return _concurrent.GetValueOrDefault((method, path)).Max;
        }
    }

    public List<RecordedRequest> RecordedRequests()
    {
        lock (_requests)
        {
            return [.. _requests];
        }
    }

    public void ClearRequests()
    {
        lock (_requests)
        {
            _requests.Clear();
        }
    }

    public static string NewId() => Guid.NewGuid().ToString();

    public static string NewHexId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}
