using BackupRelay.Configuration;
using BackupRelay.Drills;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Unit.Drills;

/// <summary>The restore-proof rule on a fixed clock: proven only by a passed drill younger than the threshold, unproven at once by a failed one.</summary>
public sealed class RestoreProofTests
{
    private const string Graph = "g1";
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
    private static readonly DrillOptions Weekly = new() { Schedule = "0 0 4 * * 0", TargetGraphId = "g1-drills" };

    private static RunIndexEntry Drill(string id, RunStatus status, DateTimeOffset created, DateTimeOffset? completed, DateTimeOffset? copyMade = null, string graph = Graph) =>
        new(id, graph, RunKind.RestoreDrill, status, completed is null ? RunStep.Uploading : RunStep.Done, created, completed, false, "b-" + id, 100, 2, CopyMadeAt: copyMade);

    private static GraphRestoreProof Evaluate(DateTimeOffset since, params RunIndexEntry[] runs) => RestoreProof.Evaluate(Graph, Weekly, since, runs, Now);

    [Fact]
    public void A_graph_without_a_drill_schedule_is_not_measured()
    {
        var proof = RestoreProof.Evaluate(Graph, null, Now.AddDays(-100), [], Now);
        Assert.Equal(RestoreProofState.NotScheduled, proof.State);
        Assert.Equal(RestoreProofState.NotScheduled, RestoreProof.Evaluate(Graph, new DrillOptions(), Now, [], Now).State);
    }

    [Fact]
    public void A_passed_drill_proves_the_graph_until_twice_the_interval_has_gone_by()
    {
        var passed = Drill("d1", RunStatus.Succeeded, Now.AddDays(-3), Now.AddDays(-3).AddMinutes(12), copyMade: Now.AddDays(-3).AddHours(-5));
        var proof = Evaluate(Now.AddDays(-30), passed);
        Assert.Equal(RestoreProofState.Proven, proof.State);
        Assert.Equal(TimeSpan.FromDays(14), proof.Threshold);
        Assert.Equal("d1", proof.LastProvenRestore!.RunId);
        Assert.Equal("b-d1", proof.LastProvenRestore.BackupId);
        Assert.Equal(TimeSpan.FromHours(5), proof.LastProvenRestore.CopyAge);
        Assert.Equal(TimeSpan.FromMinutes(12), proof.LastProvenRestore.Duration);
        Assert.Null(proof.Reason);

        var old = Drill("d0", RunStatus.Succeeded, Now.AddDays(-15), Now.AddDays(-15).AddMinutes(10));
        var stale = Evaluate(Now.AddDays(-30), old);
        Assert.Equal(RestoreProofState.RestoreUnproven, stale.State);
        Assert.Equal(old.CompletedAt!.Value + TimeSpan.FromDays(14), stale.UnprovenSince);
        Assert.Contains("no restore drill has passed since", stale.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_drill_makes_the_graph_unproven_at_once_and_a_running_one_does_not_clear_it()
    {
        var passed = Drill("d1", RunStatus.Succeeded, Now.AddDays(-8), Now.AddDays(-8).AddMinutes(10));
        var failed = Drill("d2", RunStatus.Failed, Now.AddDays(-1), Now.AddDays(-1).AddMinutes(3));
        var proof = Evaluate(Now.AddDays(-30), passed, failed);
        Assert.Equal(RestoreProofState.RestoreUnproven, proof.State);
        Assert.Equal("d2", proof.FailedDrillId);
        Assert.Equal(failed.CompletedAt, proof.UnprovenSince);
        Assert.Equal("d1", proof.LastProvenRestore!.RunId);

        var running = Drill("d3", RunStatus.Running, Now.AddMinutes(-2), null);
        var stillUnproven = Evaluate(Now.AddDays(-30), passed, failed, running);
        Assert.Equal(RestoreProofState.RestoreUnproven, stillUnproven.State);
        Assert.Equal("d3", stillUnproven.LastDrill!.Id);

        var passedAgain = Drill("d3", RunStatus.Succeeded, Now.AddMinutes(-20), Now.AddMinutes(-1));
        Assert.Equal(RestoreProofState.Proven, Evaluate(Now.AddDays(-30), passed, failed, passedAgain).State);
    }

    [Fact]
    public void Drills_that_never_passed_are_pending_for_one_threshold_then_unproven()
    {
        Assert.Equal(RestoreProofState.Pending, Evaluate(Now.AddDays(-2)).State);
        var unproven = Evaluate(Now.AddDays(-15));
        Assert.Equal(RestoreProofState.RestoreUnproven, unproven.State);
        Assert.Equal(Now.AddDays(-1), unproven.UnprovenSince);

        // Other graphs' drills and backups prove nothing here.
        var other = Drill("x", RunStatus.Succeeded, Now.AddHours(-2), Now.AddHours(-1), graph: "g2");
        Assert.Equal(RestoreProofState.RestoreUnproven, Evaluate(Now.AddDays(-15), other).State);
    }

    [Fact]
    public void A_configured_threshold_wins_over_the_default()
    {
        var drill = new DrillOptions { Schedule = "0 0 4 * * 0", TargetGraphId = "t", Threshold = TimeSpan.FromDays(2) };
        var passed = Drill("d1", RunStatus.Succeeded, Now.AddDays(-3), Now.AddDays(-3).AddMinutes(5));
        var proof = RestoreProof.Evaluate(Graph, drill, Now.AddDays(-30), [passed], Now);
        Assert.Equal(RestoreProofState.RestoreUnproven, proof.State);
        Assert.Equal(TimeSpan.FromDays(2), proof.Threshold);
    }

    /// <summary>A drill of 1 GiB that moved it in 100 s and imported it in 50 s; a newest verified copy of 4 GiB.</summary>
    private static (RunIndexEntry Drill, RunIndexEntry Copy) Measured(TimeSpan? took = null)
    {
        var created = Now.AddDays(-1);
        var drill = new RunIndexEntry("d1", Graph, RunKind.RestoreDrill, RunStatus.Succeeded, RunStep.Done, created, created + (took ?? TimeSpan.FromSeconds(160)),
            false, "b-old", 1L << 30, 1, Transfer: TimeSpan.FromSeconds(100), Import: TimeSpan.FromSeconds(50));
        var copy = new RunIndexEntry("r9", Graph, RunKind.Backup, RunStatus.Succeeded, RunStep.Done, Now.AddHours(-3), Now.AddHours(-2), false, "b-new",
            4L << 30, 3, Copy: CopyLevel.Verified);
        return (drill, copy);
    }

    [Fact]
    public void The_estimate_is_the_newest_copy_at_the_drills_rate_plus_its_import_scaled_by_size()
    {
        var (drill, copy) = Measured();
        var proof = Evaluate(Now.AddDays(-30), drill, copy);
        Assert.Equal(RestoreProofState.Proven, proof.State);
        Assert.Equal((1L << 30, TimeSpan.FromSeconds(100), TimeSpan.FromSeconds(50)),
            (proof.LastProvenRestore!.Bytes, proof.LastProvenRestore.Transfer, proof.LastProvenRestore.Import));
        var estimate = proof.Estimate!;
        Assert.Equal(("b-new", 4L << 30, "d1"), (estimate.BackupId, estimate.Bytes, estimate.FromDrill));
        Assert.Equal(TimeSpan.FromSeconds(400), estimate.Transfer);
        Assert.Equal(TimeSpan.FromSeconds(200), estimate.Import);
        Assert.Equal(TimeSpan.FromSeconds(600), estimate.Total);
        Assert.Equal(Math.Round((1L << 30) / 100.0), estimate.BytesPerSecond);

        // A smaller copy: moving it scales down, the import never below what the drill saw.
        var small = copy with { Bytes = 1L << 29 };
        Assert.Equal((TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(50)), (Evaluate(Now.AddDays(-30), drill, small).Estimate!.Transfer,
            Evaluate(Now.AddDays(-30), drill, small).Estimate!.Import));

        // No phases measured (an older record) or no verified copy: no estimate.
        Assert.Null(Evaluate(Now.AddDays(-30), drill with { Transfer = null }, copy).Estimate);
        Assert.Null(Evaluate(Now.AddDays(-30), drill).Estimate);
    }

    [Fact]
    public void A_restore_target_turns_the_graph_too_slow_when_the_drill_or_the_estimate_exceeds_it()
    {
        DrillOptions Target(int seconds) => new() { Schedule = "0 0 4 * * 0", TargetGraphId = "t", RestoreTarget = TimeSpan.FromSeconds(seconds) };
        var (drill, copy) = Measured();

        var met = RestoreProof.Evaluate(Graph, Target(900), Now.AddDays(-30), [drill, copy], Now);
        Assert.Equal(RestoreProofState.Proven, met.State);
        Assert.Equal(TimeSpan.FromSeconds(900), met.RestoreTarget);

        // The drill took 160 s, within 300 s; restoring today's 4 GiB copy would take 600 s.
        var estimated = RestoreProof.Evaluate(Graph, Target(300), Now.AddDays(-30), [drill, copy], Now);
        Assert.Equal(RestoreProofState.RestoreTooSlow, estimated.State);
        Assert.Contains("is estimated at 00:10:00", estimated.Reason, StringComparison.Ordinal);
        Assert.Equal(copy.CompletedAt, estimated.TooSlowSince);

        // The drill itself took longer than the target.
        var slowDrill = RestoreProof.Evaluate(Graph, Target(120), Now.AddDays(-30), [drill, copy], Now);
        Assert.Equal(RestoreProofState.RestoreTooSlow, slowDrill.State);
        Assert.Contains("took 00:02:40", slowDrill.Reason, StringComparison.Ordinal);
        Assert.Equal(drill.CompletedAt, slowDrill.TooSlowSince);

        // Unproven comes first: a failed drill since makes the time meaningless.
        var failed = Drill("d2", RunStatus.Failed, Now.AddHours(-1), Now.AddMinutes(-30));
        Assert.Equal(RestoreProofState.RestoreUnproven, RestoreProof.Evaluate(Graph, Target(120), Now.AddDays(-30), [drill, copy, failed], Now).State);
    }

    [Fact]
    public void The_latest_occurrence_is_found_however_sparse_the_schedule()
    {
        Assert.Equal(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero), DrillScheduler.LatestOccurrence("0 * * * * *", Now.AddSeconds(30)));
        Assert.Equal(new DateTimeOffset(2026, 12, 6, 11, 59, 0, TimeSpan.Zero), DrillScheduler.LatestOccurrence("0 * * * * *", Now.AddSeconds(-1)));
        Assert.Equal(new DateTimeOffset(2026, 12, 6, 4, 0, 0, TimeSpan.Zero), DrillScheduler.LatestOccurrence("0 0 4 * * 0", Now));
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 3, 0, 0, TimeSpan.Zero), DrillScheduler.LatestOccurrence("0 0 3 1 1 *", Now));
        Assert.Equal(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero), DrillScheduler.LatestOccurrence("0 0 12 * * *", Now));
        Assert.NotEqual(DrillScheduler.RunId("g1", Now), DrillScheduler.RunId("g2", Now));
        Assert.Equal(DrillScheduler.RunId("g1", Now), DrillScheduler.RunId("g1", Now));
        Assert.StartsWith("drl-20261206T120000-", DrillScheduler.RunId("g1", Now), StringComparison.Ordinal);
    }

    [Fact]
    public void Drill_settings_are_validated_naming_the_setting()
    {
        static string Failures(params GraphOptions[] graphs)
        {
            var options = new BackupOptions();
            options.Graphs.AddRange(graphs);
            var result = new BackupOptionsValidator().Validate(null, options);
            return result.Succeeded ? "" : string.Join("\n", result.Failures!);
        }

        Assert.Equal("", Failures(new GraphOptions { GraphId = "a", Drill = new DrillOptions { Schedule = "0 0 4 * * 0", TargetGraphId = "a-drills" } }));
        Assert.Equal("", Failures(new GraphOptions { GraphId = "a", Drill = new DrillOptions() }));
        Assert.Contains("Backup__Graphs__0__Drill__TargetGraphId is required",
            Failures(new GraphOptions { GraphId = "a", Drill = new DrillOptions { Schedule = "0 0 4 * * 0" } }), StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__0__Drill__Schedule 'weekly'",
            Failures(new GraphOptions { GraphId = "a", Drill = new DrillOptions { Schedule = "weekly", TargetGraphId = "t" } }), StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__0__Drill__TargetGraphId is the graph itself",
            Failures(new GraphOptions { GraphId = "a", Drill = new DrillOptions { Schedule = "0 0 4 * * 0", TargetGraphId = "a" } }), StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__1__Drill__TargetGraphId is a graph BackupRelay backs up (Backup__Graphs__0__GraphId)",
            Failures(new GraphOptions { GraphId = "a" }, new GraphOptions { GraphId = "b", Drill = new DrillOptions { Schedule = "0 0 4 * * 0", TargetGraphId = "a" } }),
            StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__0__Drill__Schedule is required",
            Failures(new GraphOptions { GraphId = "a", Drill = new DrillOptions { TargetGraphId = "t" } }), StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__0__Drill__Threshold must be longer than zero",
            Failures(new GraphOptions { GraphId = "a", Drill = new DrillOptions { Schedule = "0 0 4 * * 0", TargetGraphId = "t", Threshold = TimeSpan.Zero } }),
            StringComparison.Ordinal);
    }
}
