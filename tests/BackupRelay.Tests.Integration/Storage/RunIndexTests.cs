using System.Collections.Concurrent;
using System.Text.Json;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using BackupRelay.Copying;
using BackupRelay.Runs;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Storage;

/// <summary>
/// The run store's listings on Azurite cost what they return: every request the store makes is counted
/// at the HTTP layer (record reads and index listings), over a history of many runs.
/// </summary>
public sealed class RunIndexTests : StorageHarness
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 2, 0, 0, TimeSpan.Zero);
    private readonly StorageRequestCounter _counter = new();

    private async Task<(RunStore Store, BlobContainerClient Container)> StoreAsync(string? name = null)
    {
        var container = new BlobContainerClient(Azurite.ConnectionString, name ?? UniqueName("runs"),
            new BlobClientOptions(StorageClientSettings.BlobVersion) { Transport = new HttpClientTransport(new HttpClient(_counter)) });
        await container.CreateIfNotExistsAsync();
        return (new RunStore(container), container);
    }

    /// <summary>Daily runs of three graphs for <paramref name="days"/> days: every 7th fails, the last day's still run.</summary>
    private static async Task<List<RunRecord>> HistoryAsync(RunStore store, int days)
    {
        var runs = new List<RunRecord>();
        for (var day = 0; day < days; day++)
        {
            foreach (var graph in new[] { "g-a", "g-b", "g-c" })
            {
                var created = Start.AddDays(day).AddMinutes(graph[^1] - 'a');
                var run = new RunRecord
                {
                    Id = $"run-{graph}-{day:D4}", GraphId = graph, Kind = RunKind.Backup, CreatedAt = created, UpdatedAt = created,
                    Status = RunStatus.Running, Step = RunStep.Copying, BackupId = $"b-{graph}-{day}",
                    Files = [new RunFile { Name = "f.zip", Size = 100 + day, BytesCopied = 100 + day }],
                };
                runs.Add(run);
            }
        }

        await Parallel.ForEachAsync(runs, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (run, ct) =>
        {
            await store.CreateAsync(run, ct);
            var day = int.Parse(run.Id[^4..], System.Globalization.CultureInfo.InvariantCulture);
            if (day < days - 1)
            {
                await store.UpdateAsync(run.Id, r =>
                {
                    r.Status = day % 7 == 3 ? RunStatus.Failed : RunStatus.Succeeded;
                    r.Step = day % 7 == 3 ? RunStep.BackingUp : RunStep.Done;
                    r.CompletedAt = r.CreatedAt.AddMinutes(30);
                    if (r.Status == RunStatus.Succeeded)
                    {
                        // Copied and checked against the source: a verified copy.
                        r.Files[0].Status = RunFileStatus.Completed;
                        r.Files[0].Verification = Verification.SourceMd5;
                    }

                    return true;
                }, ct);
            }
        });

        // The one-time index build the first create started (it reads records) is over before anything is counted.
        await store.ListAsync(limit: 1);
        return runs;
    }

    [Fact]
    public async Task Listing_the_newest_runs_reads_only_the_records_it_returns()
    {
        var (store, _) = await StoreAsync();
        var all = await HistoryAsync(store, 100);
        _counter.Reset();

        var newest = await store.ListAsync(limit: 10);
        Assert.Equal(all.OrderByDescending(r => r.CreatedAt).Take(10).Select(r => r.Id), newest.Select(r => r.Id));
        Assert.Equal(10, _counter.RecordReads);

        // One listing of the days that have runs, then one per day read, newest first: three runs a day, so four
        // days for ten runs. No listing spans the history.
        Assert.Equal(5, _counter.Listings);

        _counter.Reset();
        var failed = await store.ListAsync("g-b", RunStatus.Failed, limit: 3);
        Assert.Equal(["run-g-b-0094", "run-g-b-0087", "run-g-b-0080"], failed.Select(r => r.Id));

        // The three returned, and the one still running (its status may have moved on since its entry).
        Assert.Equal(4, _counter.RecordReads);
    }

    [Fact]
    public async Task A_graphs_freshness_reads_its_index_back_to_its_newest_verified_copy_and_the_records_of_running_runs_only()
    {
        var (store, _) = await StoreAsync();
        await HistoryAsync(store, 100);
        _counter.Reset();

        var history = await store.HistoryAsync("g-a", e => e.IsVerifiedCopy);

        // Day 99 still runs (its record read to confirm), day 98 succeeded: two entries, one record read, one listing.
        Assert.Equal(["run-g-a-0099", "run-g-a-0098"], history.Select(e => e.RunId));
        Assert.Equal(1, _counter.RecordReads);
        Assert.Equal(1, _counter.Listings);
        var verified = history[1];
        Assert.Equal((RunStatus.Succeeded, RunStep.Done, "b-g-a-98", 198L, 1), (verified.Status, verified.Step, verified.BackupId, verified.Bytes, verified.Files));
    }

    [Fact]
    public async Task Every_graphs_newest_run_and_verified_copy_is_one_read_per_graph_plus_the_records_of_runs_still_going()
    {
        var (store, _) = await StoreAsync();
        await HistoryAsync(store, 20);
        _counter.Reset();

        var latest = await store.LatestAsync(["g-a", "g-b", "g-c", "g-never"]);

        // Day 19 still runs (each graph's record read to confirm), day 18 is the newest verified copy; a summary
        // read per graph, and one listing for the graph that has none (never ran).
        Assert.Equal(["run-g-b-0019", "run-g-b-0018"], latest["g-b"].Select(e => e.RunId));
        Assert.Empty(latest["g-never"]);
        Assert.Equal(1, _counter.Listings);
        Assert.Equal(3, _counter.RecordReads);

        // Day 17 was the 7th-day failure, so after day 19 fails too the verified copy stays day 18.
        await store.UpdateAsync("run-g-b-0019", r =>
        {
            r.Status = RunStatus.Failed;
            r.CompletedAt = r.CreatedAt.AddHours(1);
            return true;
        });
        var after = (await store.LatestAsync(["g-b"]))["g-b"];
        Assert.Equal((RunStatus.Failed, "run-g-b-0018"), (after[0].Status, after[1].RunId));
    }

    [Fact]
    public async Task An_entry_left_behind_by_a_crash_is_repaired_from_the_record_when_read()
    {
        var (store, container) = await StoreAsync();
        await HistoryAsync(store, 2);

        // The record finished, but the process died before its index entries said so.
        var blob = container.GetBlobClient("runs/run-g-a-0001.json");
        var run = JsonSerializer.Deserialize((await blob.DownloadContentAsync()).Value.Content.ToMemory().Span, RunRecordJson.Default.RunRecord)!;
        run.Status = RunStatus.Succeeded;
        run.Step = RunStep.Done;
        run.CompletedAt = run.CreatedAt.AddHours(1);
        run.Files[0].Status = RunFileStatus.Completed;
        run.Files[0].Verification = Verification.SourceMd5;
        await blob.UploadAsync(BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(run, RunRecordJson.Default.RunRecord)), overwrite: true);

        var history = await store.HistoryAsync("g-a", e => e.IsVerifiedCopy);
        Assert.Equal(RunStatus.Succeeded, history[0].Status);

        // Repaired: the next reader trusts the entry without reading the record.
        _counter.Reset();
        Assert.Equal("run-g-a-0001", Assert.Single(await store.HistoryAsync("g-a", e => e.IsVerifiedCopy)).RunId);
        Assert.Equal(0, _counter.RecordReads);
    }

    [Fact]
    public async Task Records_written_before_the_index_existed_are_indexed_once()
    {
        var name = UniqueName("runs");
        var (_, container) = await StoreAsync(name);
        foreach (var i in Enumerable.Range(0, 5))
        {
            var run = new RunRecord
            {
                Id = $"old-{i}", GraphId = "g-old", CreatedAt = Start.AddDays(i), UpdatedAt = Start.AddDays(i), Status = RunStatus.Succeeded,
                CompletedAt = Start.AddDays(i).AddHours(1), Step = RunStep.Done,
                Files = [new RunFile { Name = "f.zip", Size = 10, BytesCopied = 10, Status = RunFileStatus.Completed, Verification = Verification.SourceMd5 }],
            };
            await container.GetBlobClient($"runs/{run.Id}.json").UploadAsync(BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(run, RunRecordJson.Default.RunRecord)));
        }

        var (upgraded, _) = await StoreAsync(name);
        Assert.Equal(["old-4", "old-3"], (await upgraded.ListAsync(limit: 2)).Select(r => r.Id));

        // Another process (a new store) finds the index built: no second pass over the records.
        var (another, _) = await StoreAsync(name);
        _counter.Reset();
        Assert.Equal(5, (await another.ListAsync("g-old")).Count);
        Assert.Equal(5, _counter.RecordReads);
    }

    [Fact]
    public async Task An_index_built_before_the_day_markers_gets_them_once_and_lists_every_run()
    {
        var name = UniqueName("runs");
        var (store, container) = await StoreAsync(name);
        var all = await HistoryAsync(store, 6);

        // As an earlier version left it: entries by day, no day markers, no marker saying they were written.
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "index/days/", CancellationToken.None))
        {
            await container.DeleteBlobAsync(blob.Name);
        }

        await container.DeleteBlobAsync("index/.built-v2-days");
        var (upgraded, _) = await StoreAsync(name);
        Assert.Equal(all.OrderByDescending(r => r.CreatedAt).Select(r => r.Id), (await upgraded.ListAsync(limit: 100)).Select(r => r.Id));
        var days = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "index/days/", CancellationToken.None))
        {
            days.Add(blob.Name);
        }

        Assert.Equal(6, days.Count);
    }

    [Fact]
    public async Task Retention_deletes_finished_runs_older_than_the_cutoff_with_their_entries_and_keeps_the_rest()
    {
        var (store, container) = await StoreAsync();
        await HistoryAsync(store, 30);

        // A run from the first day that never finished stays: it is not history yet.
        await store.CreateAsync(new RunRecord { Id = "stuck", GraphId = "g-a", CreatedAt = Start.AddHours(1), UpdatedAt = Start.AddHours(1), Status = RunStatus.Running });

        // Nor does the record of a graph's newest verified copy, however old: a restore checks the copy against it.
        await store.CreateAsync(new RunRecord { Id = "only-copy", GraphId = "g-quiet", Kind = RunKind.Backup, CreatedAt = Start, UpdatedAt = Start, Status = RunStatus.Running });
        await store.UpdateAsync("only-copy", r =>
        {
            r.Status = RunStatus.Succeeded;
            r.CompletedAt = Start.AddHours(1);
            r.Files = [new RunFile { Name = "f.zip", Size = 1, BytesCopied = 1, Status = RunFileStatus.Completed, Verification = Verification.SourceMd5 }];
            return true;
        });

        var deleted = await new RunHousekeeping(store).DeleteOlderThanAsync(Start.AddDays(10));
        Assert.Equal(30, deleted);
        var left = await store.ListAsync(limit: int.MaxValue);
        Assert.Equal(62, left.Count);
        Assert.Contains(left, r => r.Id == "stuck");
        Assert.Contains(left, r => r.Id == "only-copy");
        Assert.All(left.Where(r => r.Id is not "stuck" and not "only-copy"), r => Assert.True(r.CreatedAt >= Start.AddDays(10)));
        Assert.False(await container.GetBlobClient("runs/run-g-a-0000.json").ExistsAsync());
        var names = new List<string>();
        await foreach (var item in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "index/", CancellationToken.None))
        {
            names.Add(item.Name);
        }

        Assert.DoesNotContain(names, n => n.EndsWith("-run-g-a-0000", StringComparison.Ordinal) || n.EndsWith("/run-g-a-0000", StringComparison.Ordinal));

        // A day emptied loses its marker (listings no longer visit it); a day with a run kept keeps it.
        static string Marker(DateTimeOffset day) => "index/days/" + day.UtcDateTime.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture);
        Assert.DoesNotContain(Marker(Start.AddDays(1)), names);
        Assert.Contains(Marker(Start), names);
        Assert.Contains(Marker(Start.AddDays(10)), names);
        Assert.Equal(0, await new RunHousekeeping(store).DeleteOlderThanAsync(Start.AddDays(10)));
    }

    [Fact]
    public async Task An_ended_run_whose_notification_a_crash_kept_unqueued_is_queued_by_the_sweep_once()
    {
        var observer = new Observer();
        var container = new BlobContainerClient(Azurite.ConnectionString, UniqueName("runs"), new BlobClientOptions(StorageClientSettings.BlobVersion));
        await container.CreateIfNotExistsAsync();
        var store = new RunStore(container, observer);
        var now = DateTimeOffset.UtcNow;

        // Ended ten minutes ago; the process died before it queued the notification (the observer refused then).
        observer.Accept = false;
        await store.CreateAsync(new RunRecord { Id = "ended", GraphId = "g", CreatedAt = now.AddMinutes(-30), UpdatedAt = now.AddMinutes(-30) });
        await store.UpdateAsync("ended", r =>
        {
            (r.Status, r.CompletedAt) = (RunStatus.Succeeded, now.AddMinutes(-10));
            return true;
        });
        await store.CreateAsync(new RunRecord { Id = "old", GraphId = "g", CreatedAt = now.AddDays(-3), UpdatedAt = now.AddDays(-3) });
        await store.UpdateAsync("old", r =>
        {
            (r.Status, r.CompletedAt) = (RunStatus.Failed, now.AddDays(-3).AddHours(1));
            return true;
        });
        Assert.Empty(observer.Queued);

        observer.Accept = true;
        await new RunHousekeeping(store).SweepNotificationsAsync(now, TimeSpan.FromMinutes(2));
        await new RunHousekeeping(store).SweepNotificationsAsync(now, TimeSpan.FromMinutes(2));

        // Queued once (then marked, on the record and its index entry); a run ended days ago is history, not news.
        Assert.Equal(["ended"], observer.Queued);
        Assert.True((await store.GetAsync("ended"))!.NotificationQueued);
    }

    private sealed class Observer : IRunObserver
    {
        public bool Accept { get; set; }

        public ConcurrentQueue<string> Queued { get; } = new();

        public void Created(RunRecord run)
        {
        }

        public void Finished(RunRecord run)
        {
        }

        public Task<bool> QueueNotificationAsync(RunRecord run)
        {
            if (Accept)
            {
                Queued.Enqueue(run.Id);
            }

            return Task.FromResult(Accept);
        }

        public void Unreadable(string runId, string reason)
        {
        }
    }
}
