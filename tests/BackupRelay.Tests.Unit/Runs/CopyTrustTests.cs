using System.Text.Json;
using BackupRelay.Copying;
using BackupRelay.Messaging;
using BackupRelay.Restores;
using BackupRelay.Runs;
using BackupRelay.Tests.Unit.Handlers;

namespace BackupRelay.Tests.Unit.Runs;

/// <summary>
/// A copy's trust is decided once, by the run record when the run ends, and the restore's record check reads it:
/// only the backup run that made a copy vouches for it, and only at the level it proved.
/// </summary>
public sealed class CopyTrustTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);
    private const string Graph = "g1";
    private const string BackupId = "b-1";

    /// <summary>A backup run that copied <paramref name="files"/> (name, verification; null verification: the file failed) and ended by its files.</summary>
    private static RunRecord Backup(string id, params (string Name, string? Verification)[] files)
    {
        var run = RunRecord.NewBackup(id, Graph, "schedule", null, Now, TimeSpan.FromHours(6));
        run.RecordJob("job-" + id, RunStep.BackingUp, Now, BackupId);
        run.StartCopying(files.Select(f => RunFile.Listed(f.Name, 1)), Now);
        foreach (var (name, verification) in files)
        {
            if (verification is null)
            {
                run.FailFile(name, RunStep.Copying, "source gone", Now, endRun: false);
            }
            else
            {
                run.FileNamed(name).Complete(1000, Hex(name, 32), Hex(name, 64), verification, Now, Now,
                    verification == Verification.ReceivedOnly ? "the source declared no checksum" : null);
            }
        }

        run.FinishByFiles(Now);
        return run;
    }

    private static string Hex(string seed, int length) => string.Concat(Enumerable.Repeat(Convert.ToHexStringLower(System.Text.Encoding.UTF8.GetBytes(seed)), 64))[..length];

    private static BackupManifest ManifestOf(RunRecord run) =>
        new(1, run.Id, run.GraphId, null, null, run.JobId, run.CreatedAt, Now,
            [.. run.Files.Where(f => f.Status == RunFileStatus.Completed).Select(f => new ManifestFile(f.Name, f.Size!.Value, f.Md5!, f.Sha256!, null, null, 1, f.Verification))]);

    [Fact]
    public void A_backup_whose_files_were_all_checked_against_their_source_is_verified()
    {
        var run = Backup("r1", ("a.tar", Verification.SourceMd5), ("b.tar", Verification.SourceMultipartMd5), ("c.tar", Verification.EmptySource));
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal(CopyLevel.Verified, run.Copy!.Level);
        Assert.Empty(run.Copy.Unchecked);
        Assert.True(RunIndexEntry.Of(run).IsVerifiedCopy);
    }

    [Theory]
    [InlineData(Verification.ReceivedOnly)]
    [InlineData(Verification.SecondRead)]
    public void A_backup_with_one_file_not_checked_against_its_source_succeeds_but_is_received_only(string verification)
    {
        var run = Backup("r1", ("a.tar", Verification.SourceMd5), ("b.tar", verification));
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal(CopyLevel.ReceivedOnly, run.Copy!.Level);
        Assert.Equal("b.tar", Assert.Single(run.Copy.Unchecked).Split(' ')[0]);
        Assert.Contains(verification, run.Copy.Summary, StringComparison.Ordinal);
        var entry = RunIndexEntry.Of(run);
        Assert.True(entry.IsCopy);
        Assert.False(entry.IsVerifiedCopy);
    }

    [Fact]
    public void A_partially_failed_backup_is_incomplete_and_names_what_it_lacks()
    {
        var run = Backup("r1", ("a.tar", Verification.SourceMd5), ("b.tar", Verification.SourceMd5), ("c.tar", null));
        Assert.Equal(RunStatus.PartiallyFailed, run.Status);
        Assert.Equal(CopyLevel.Incomplete, run.Copy!.Level);
        Assert.Equal(["c.tar"], run.Copy.Missing);
        Assert.False(RunIndexEntry.Of(run).IsCopy);
    }

    [Fact]
    public void The_level_is_stored_with_the_record_and_a_record_from_before_it_is_decided_on_read_by_the_same_rule()
    {
        var run = Backup("r1", ("a.tar", Verification.ReceivedOnly));
        var json = JsonSerializer.Serialize(run, RunRecordJson.Default.RunRecord);
        Assert.Contains("\"copy\":{\"level\":\"received-only\"", json, StringComparison.Ordinal);

        var legacy = JsonSerializer.Deserialize(json.Replace(json[json.IndexOf(",\"copy\":", StringComparison.Ordinal)..(json.IndexOf("]}", json.IndexOf(",\"copy\":", StringComparison.Ordinal), StringComparison.Ordinal) + 2)], ""),
            RunRecordJson.Default.RunRecord)!;
        Assert.Null(legacy.Copy);
        Assert.Equal(CopyLevel.ReceivedOnly, legacy.Trust!.Level);
    }

    [Fact]
    public void Other_kinds_of_run_have_no_copy_level()
    {
        var import = RunRecord.NewImport("imp-1", Graph, "bucket/p/", "job", Now, TimeSpan.FromHours(1));
        import.Succeed(Now);
        Assert.Null(import.Copy);
        Assert.Null(import.Trust);
    }

    [Fact]
    public void An_ended_run_cannot_end_again_nor_take_a_job()
    {
        var run = Backup("r1", ("a.tar", Verification.SourceMd5));
        Assert.Throws<InvalidOperationException>(() => run.Fail(Now, RunStep.Copying, "again"));
        Assert.Throws<InvalidOperationException>(() => run.Succeed(Now));
        Assert.Throws<InvalidOperationException>(() => run.RecordJob("other-job", RunStep.BackingUp, Now));
        Assert.Throws<InvalidOperationException>(() => run.StartCopying([], Now));
        Assert.Equal(RunStatus.Succeeded, run.Status);
    }

    [Fact]
    public void A_run_following_a_job_cannot_switch_to_another()
    {
        var run = RunRecord.NewBackup("r1", Graph, "schedule", null, Now, TimeSpan.FromHours(6));
        run.RecordJob("job-1", RunStep.BackingUp, Now);
        run.RecordJob("job-1", RunStep.BackingUp, Now); // the same job again (a redelivery) is fine
        Assert.Throws<InvalidOperationException>(() => run.RecordJob("job-2", RunStep.BackingUp, Now));
    }

    private static async Task<(string CheckedAgainst, CopyLevel? Level, string? Refusal)> CheckAsync(FakeRunRecords runs, BackupManifest manifest,
        bool acceptUnverified = false, bool acceptIncomplete = false) =>
        await CopyRestores.CheckAgainstRecordAsync(runs, manifest, Graph, BackupId, acceptUnverified, acceptIncomplete, CancellationToken.None);

    [Fact]
    public async Task The_backup_run_that_made_a_verified_copy_vouches_for_it()
    {
        var runs = new FakeRunRecords();
        var made = Backup("r1", ("a.tar", Verification.SourceMd5), ("b.tar", Verification.SourceMd5));
        runs.Put(made);
        Assert.Equal(("run-record", CopyLevel.Verified, (string?)null), await CheckAsync(runs, ManifestOf(made)));
    }

    [Fact]
    public async Task A_same_length_forgery_is_refused_by_its_hashes()
    {
        var runs = new FakeRunRecords();
        var made = Backup("r1", ("a.tar", Verification.SourceMd5));
        runs.Put(made);
        var forged = ManifestOf(made);
        forged = forged with { Files = [forged.Files[0] with { Md5 = Hex("forged", 32) }] };
        var (_, _, refusal) = await CheckAsync(runs, forged, acceptUnverified: true, acceptIncomplete: true);
        Assert.Contains("changed after it was made", refusal, StringComparison.Ordinal);

        forged = ManifestOf(made) with { Files = [ManifestOf(made).Files[0] with { Sha256 = Hex("forged", 64) }] };
        (_, _, refusal) = await CheckAsync(runs, forged, acceptUnverified: true, acceptIncomplete: true);
        Assert.Contains("changed after it was made", refusal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_restore_run_never_vouches_for_a_copy_even_when_its_files_match_and_unverified_copies_are_accepted()
    {
        var runs = new FakeRunRecords();
        var made = Backup("r1", ("a.tar", Verification.SourceMd5));
        var manifest = ManifestOf(made);
        var restore = RunRecord.NewCopyRestore("rfc-1", RunKind.RestoreFromCopy, "http", Graph, null, BackupId, Graph, "bucket/p/", null, null, null,
            manifest.Files.Select(f => (f.Name, f.Size, f.Md5, f.Sha256)), "manifest", null, Now);
        foreach (var file in restore.Files)
        {
            file.Complete(file.Size!.Value, null, null, null, Now, Now);
        }

        restore.Fail(Now, RunStep.Importing, "GES refused the import");
        runs.Put(restore);
        var (_, _, refusal) = await CheckAsync(runs, manifest with { RunId = restore.Id }, acceptUnverified: true);
        Assert.Contains("only the backup run that made a copy vouches for it", refusal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_or_unended_backup_run_or_one_of_another_graph_never_vouches()
    {
        var runs = new FakeRunRecords();
        var failed = Backup("r1", ("a.tar", null));
        runs.Put(failed);
        var manifest = ManifestOf(Backup("r1", ("a.tar", Verification.SourceMd5)));
        Assert.Contains("it failed", (await CheckAsync(runs, manifest, true, true)).Refusal, StringComparison.Ordinal);

        var running = RunRecord.NewBackup("r2", Graph, "schedule", null, Now, TimeSpan.FromHours(1));
        running.RecordJob("j", RunStep.BackingUp, Now, BackupId);
        runs.Put(running);
        Assert.Contains("has not ended", (await CheckAsync(runs, manifest with { RunId = "r2" }, true, true)).Refusal, StringComparison.Ordinal);

        var other = RunRecord.NewBackup("r3", "g2", "schedule", null, Now, TimeSpan.FromHours(1));
        other.RecordJob("j", RunStep.BackingUp, Now, BackupId);
        runs.Put(other);
        Assert.Contains("backed up graph g2", (await CheckAsync(runs, manifest with { RunId = "r3" }, true, true)).Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_received_only_copy_is_refused_unless_accepted_and_then_says_so()
    {
        var runs = new FakeRunRecords();
        var made = Backup("r1", ("a.tar", Verification.ReceivedOnly));
        runs.Put(made);
        var (_, level, refusal) = await CheckAsync(runs, ManifestOf(made));
        Assert.Equal(CopyLevel.ReceivedOnly, level);
        Assert.Contains("acceptUnverified", refusal, StringComparison.Ordinal);
        Assert.Equal(("run-record", CopyLevel.ReceivedOnly, (string?)null), await CheckAsync(runs, ManifestOf(made), acceptUnverified: true));
    }

    [Fact]
    public async Task An_incomplete_copy_is_refused_naming_the_missing_files_unless_accepted()
    {
        var runs = new FakeRunRecords();
        var made = Backup("r1", ("a.tar", Verification.SourceMd5), ("b.tar", Verification.SourceMd5), ("c.tar", null));
        runs.Put(made);
        var manifest = ManifestOf(made);
        Assert.Equal(2, manifest.Files.Count);
        var (_, level, refusal) = await CheckAsync(runs, manifest, acceptUnverified: true);
        Assert.Equal(CopyLevel.Incomplete, level);
        Assert.Contains("did not copy c.tar", refusal, StringComparison.Ordinal);
        Assert.Equal(("run-record", CopyLevel.Incomplete, (string?)null), await CheckAsync(runs, manifest, acceptIncomplete: true));
    }
}
