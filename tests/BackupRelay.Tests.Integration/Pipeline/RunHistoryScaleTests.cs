using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using BackupRelay.Configuration;
using BackupRelay.Copying;
using BackupRelay.Runs;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Years of run history in Azurite (<c>RUNS_BENCH_RECORDS</c> records over <c>RUNS_BENCH_GRAPHS</c> configured
/// graphs; small by default, 100,000 × 200 in <c>build/runs-benchmark.sh</c>): <c>/api/graphs</c> and
/// <c>/api/runs?limit=50</c> through the worker answer right, and a freshness pass is one summary read per graph,
/// no listing and no record read. Timings are written for the benchmark, never asserted.
/// </summary>
public sealed class RunHistoryScaleTests : PipelineHarness
{
    private static readonly int Records = int.Parse(Environment.GetEnvironmentVariable("RUNS_BENCH_RECORDS") ?? "3000", CultureInfo.InvariantCulture);
    private static readonly int GraphCount = int.Parse(Environment.GetEnvironmentVariable("RUNS_BENCH_GRAPHS") ?? "200", CultureInfo.InvariantCulture);
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private TimeSpan _seeding;

    private static string Graph(int i) => i switch
    {
        0 => GraphA,
        1 => GraphB,
        _ => $"a1b2c3d4-0000-4000-8000-{i:D12}",
    };

    /// <summary>
    /// Record k: graph k mod G, two a day (every 12 h) back from now, every 7th run of a graph failed. Twice daily
    /// keeps 100,000 records over 200 graphs (250 days) inside the default retention (400 days): the history is
    /// measured as it is kept, not while the retention pass at start-up deletes a fifth of it.
    /// </summary>
    private static RunRecord Run(int k)
    {
        var day = k / GraphCount;
        var created = Now.AddHours(-12 * (day + 1)).AddSeconds(k % GraphCount);
        var failed = day % 7 == 3;
        return new RunRecord
        {
            Id = $"sch-{k:D7}", GraphId = Graph(k % GraphCount), Kind = RunKind.Backup, CreatedAt = created, UpdatedAt = created.AddMinutes(20),
            CompletedAt = created.AddMinutes(20), Status = failed ? RunStatus.Failed : RunStatus.Succeeded, Step = failed ? RunStep.BackingUp : RunStep.Done,
            BackupId = $"b-{k:D7}", NotificationQueued = true,
            Files = [new RunFile { Name = "vertices.zip", Size = 4096, BytesCopied = 4096, Status = RunFileStatus.Completed, Verification = Verification.SourceMd5 }],
        };
    }

    protected override Dictionary<string, string?> ExtraSettings()
    {
        var settings = new Dictionary<string, string?> { ["Http:HealthCacheDuration"] = "00:00:00" };
        for (var i = 2; i < GraphCount; i++)
        {
            settings[$"Backup:Graphs:{i}:GraphId"] = Graph(i);
        }

        return settings;
    }

    protected override async Task BeforeHostStartsAsync()
    {
        // Written as the run store writes them (record and index entries), before the app starts.
        var container = Storage.GetContainer(QueueNames.RunsContainer);
        await container.CreateIfNotExistsAsync();
        var index = new RunIndex(container);
        var watch = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, Records), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (k, ct) =>
        {
            var run = Run(k);
            await container.GetBlobClient($"runs/{run.Id}.json").UploadAsync(
                BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(run, RunRecordJson.Default.RunRecord)), overwrite: true, ct);
            await index.WriteAsync(run, summarise: false, ct);
        });

        // Each graph's summary once, from its newest run and its newest succeeded one (what the store's writes leave).
        await Parallel.ForEachAsync(Enumerable.Range(0, GraphCount), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (g, ct) =>
        {
            var ofGraph = Enumerable.Range(0, (Records - g + GraphCount - 1) / GraphCount).Select(day => Run(g + (day * GraphCount))).ToList();
            await index.UpdateSummaryAsync(RunIndexEntry.Of(ofGraph.MaxBy(r => r.CreatedAt)!), ct);
            await index.UpdateSummaryAsync(RunIndexEntry.Of(ofGraph.Where(r => r.Status == RunStatus.Succeeded).MaxBy(r => r.CompletedAt)!), ct);
        });
        await index.MarkBuiltAsync();
        _seeding = watch.Elapsed;
    }

    [Fact]
    public async Task Graphs_runs_and_freshness_cost_what_they_return_over_a_long_history()
    {
        var graphsTimes = new List<double>();
        var runsTimes = new List<double>();
        var graphRunsTimes = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            using (var graphs = await GetAsync("/api/graphs"))
            {
                graphsTimes.Add(watch.Elapsed.TotalMilliseconds);
                var text = await graphs.Content.ReadAsStringAsync();
                Assert.True(graphs.StatusCode == HttpStatusCode.OK, $"GET /api/graphs: {(int)graphs.StatusCode} after {watch.ElapsedMilliseconds} ms: {text}\n{Logs.All()}");
                var list = JsonNode.Parse(text)!.AsArray();
                Assert.Equal(GraphCount, list.Count);

                // Each graph's newest run is 12 h old; its newest verified copy the newest succeeded one.
                var a = list.Single(g => g!["graphId"]!.GetValue<string>() == GraphA)!;
                Assert.Equal(Run(0).Id, a["lastRun"]!["id"]!.GetValue<string>());
                Assert.Equal(Run(0).Id, a["lastVerifiedCopy"]!["runId"]!.GetValue<string>());
            }

            watch.Restart();
            using (var runs = await GetAsync("/api/runs?limit=50"))
            {
                runsTimes.Add(watch.Elapsed.TotalMilliseconds);
                var list = JsonNode.Parse(await runs.Content.ReadAsStringAsync())!.AsArray();
                Assert.Equal(Enumerable.Range(0, Records).OrderBy(k => k / GraphCount).ThenByDescending(k => k % GraphCount).Take(50).Select(k => Run(k).Id),
                    list.Select(r => r!["id"]!.GetValue<string>()));
            }

            watch.Restart();
            using (var failed = await GetAsync($"/api/runs?graphId={GraphB}&status=failed&limit=50"))
            {
                graphRunsTimes.Add(watch.Elapsed.TotalMilliseconds);
                var list = JsonNode.Parse(await failed.Content.ReadAsStringAsync())!.AsArray();
                Assert.All(list, r => Assert.Equal("failed", r!["status"]!.GetValue<string>(), ignoreCase: true));
                Assert.Equal(Enumerable.Range(0, Records).Where(k => k % GraphCount == 1 && (k / GraphCount) % 7 == 3).Take(50).Select(k => Run(k).Id),
                    list.Select(r => r!["id"]!.GetValue<string>()));
            }
        }

        // A freshness pass as the worker makes it, its requests counted: one listing per graph, no record read.
        var counter = new BackupRelay.Tests.Integration.Storage.StorageRequestCounter();
        var container = new BlobContainerClient(Azurite.ConnectionString, QueueNames.RunsContainer,
            new BlobClientOptions(StorageClientSettings.BlobVersion) { Transport = new HttpClientTransport(new HttpClient(counter)) });
        var store = new RunStore(container);
        await store.ListAsync(limit: 1);
        counter.Reset();
        var pass = Stopwatch.StartNew();
        var latest = await store.LatestAsync([.. Enumerable.Range(0, GraphCount).Select(Graph)]);
        pass.Stop();
        var listings = counter.Requests.Count(r => r.Contains("comp=list", StringComparison.Ordinal));
        var reads = counter.Requests.Count(r => r.StartsWith("GET", StringComparison.Ordinal) && r.EndsWith(".json", StringComparison.Ordinal));
        Assert.Equal(GraphCount, latest.Count);
        Assert.Equal(Run(0).Id, latest[GraphA][0].RunId);
        Assert.Equal(0, listings);
        Assert.Equal(0, reads);
        Assert.Equal(GraphCount, counter.Requests.Count);
        var passRequests = counter.Requests.Count;

        // The peer: what every listing cost before the index (list every record and read it), 16 reads at a time.
        var scan = Stopwatch.StartNew();
        var names = new List<string>();
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "runs/", CancellationToken.None))
        {
            names.Add(item.Name);
        }

        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (name, ct) =>
            await container.GetBlobClient(name).DownloadContentAsync(ct));
        scan.Stop();
        Assert.Equal(Records, names.Count);

        // The floor under /api/runs?limit=50 on this storage: the same requests it makes — the listing of the days
        // with runs, the newest day's entries, then the 50 newest records 16 at a time — sent straight from the SDK.
        var floorTimes = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var floor = Stopwatch.StartNew();
            var days = new List<string>();
            await foreach (var day in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "index/days/", CancellationToken.None))
            {
                days.Add(day.Name);
            }

            var newest = new List<(long Created, string Run)>();
            await foreach (var entry in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, $"index/day/{days[^1]["index/days/".Length..]}/",
                               CancellationToken.None))
            {
                newest.Add((long.Parse(entry.Metadata["created"], System.Globalization.CultureInfo.InvariantCulture), entry.Metadata["run"]));
            }

            foreach (var chunk in newest.OrderByDescending(e => e.Created).Take(50).Chunk(16))
            {
                await Task.WhenAll(chunk.Select(e => container.GetBlobClient($"runs/{e.Run}.json").DownloadContentAsync()));
            }

            floorTimes.Add(floor.Elapsed.TotalMilliseconds);
        }

        static string Median(List<double> ms) => $"{ms.Order().ElementAt(ms.Count / 2):F0} ms (max {ms.Max():F0})";
        var figures =
            $"run history: {Records:N0} records over {GraphCount} graphs in Azurite (seeded in {_seeding.TotalSeconds:F0} s)\n" +
            $"  GET /api/graphs                                   {Median(graphsTimes)}  limit 1000 ms\n" +
            $"  GET /api/runs?limit=50                            {Median(runsTimes)}  limit 1000 ms\n" +
            $"  GET /api/runs?graphId=..&status=failed&limit=50   {Median(graphRunsTimes)}\n" +
            $"  floor: the same 2 listings + 50 record reads from the SDK  {Median(floorTimes)}; /api/runs = x{runsTimes.Order().ElementAt(2) / floorTimes.Order().ElementAt(2):F2} of it\n" +
            $"  freshness pass: {passRequests} storage requests (one summary read per graph, {listings} listings, {reads} record reads) for {GraphCount} graphs, {pass.Elapsed.TotalMilliseconds:F0} ms\n" +
            $"  peer, reading every record as listings did before the index: {scan.Elapsed.TotalSeconds:F1} s ({Records:N0} reads)\n" +
            $"  ratios: /api/graphs {graphsTimes.Order().ElementAt(2) / 1000:F3} of the 1 s limit, /api/runs {runsTimes.Order().ElementAt(2) / 1000:F3}; " +
            $"full read / /api/graphs = x{scan.Elapsed.TotalMilliseconds / graphsTimes.Order().ElementAt(2):F0}\n";
        await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), "backuprelay-runs-scale.txt"), figures);
    }

    private async Task<HttpResponseMessage> GetAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("x-functions-key", FunctionKey);
        return await Api.SendAsync(request);
    }
}
