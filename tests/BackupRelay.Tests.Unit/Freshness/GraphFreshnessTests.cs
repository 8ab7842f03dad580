using BackupRelay.Copying;
using BackupRelay.Freshness;
using BackupRelay.Runs;
using BackupRelay.Scheduling;
using Microsoft.Extensions.Time.Testing;

namespace BackupRelay.Tests.Unit.Freshness;

/// <summary>The freshness rule on a fake clock: only a finished, verified backup run makes a graph fresh.</summary>
public sealed class GraphFreshnessTests
{
    private const string Graph = "g1";
    private const string Daily = "0 0 2 * * *";
    private static readonly NCrontab.CrontabSchedule Schedule = ScheduleBackupsHandler.Parse(Daily);
    private static readonly TimeSpan Deadline = TimeSpan.FromHours(6);

    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));

    private TimeSpan Threshold => GraphFreshness.DefaultThreshold(Schedule, Deadline, _clock.GetUtcNow());

    private GraphStatus Evaluate(DateTimeOffset firstSeen, params RunRecord[] runs) =>
        GraphFreshness.Evaluate(Graph, "orders", Daily, Schedule, Threshold, firstSeen, runs, _clock.GetUtcNow());

    /// <summary>A run as stored: a succeeded one has every file completed with <paramref name="verification"/>, a partially failed one lost its second file.</summary>
    private static RunRecord Run(string id, RunStatus status, DateTimeOffset created, DateTimeOffset? completed = null, RunKind kind = RunKind.Backup, string graph = Graph,
        string verification = Verification.SourceMd5) => new()
    {
        Id = id,
        Kind = kind,
        GraphId = graph,
        Status = status,
        CreatedAt = created,
        CompletedAt = completed,
        BackupId = "b-" + id,
        Files =
        [
            new RunFile { Name = "a.tar", Size = 100, Status = status is RunStatus.Succeeded or RunStatus.PartiallyFailed ? RunFileStatus.Completed : RunFileStatus.Pending, Verification = verification },
            new RunFile { Name = "b.tar", Size = 23, Status = status == RunStatus.Succeeded ? RunFileStatus.Completed : RunFileStatus.Failed, Verification = verification },
        ],
    };

    [Fact]
    public void A_received_only_copy_never_makes_a_graph_fresh_and_says_why()
    {
        var done = _clock.GetUtcNow().AddHours(-2);
        var status = Evaluate(_clock.GetUtcNow().AddHours(-5), Run("ro", RunStatus.Succeeded, done.AddMinutes(-10), done, verification: Verification.ReceivedOnly));
        Assert.Equal(FreshnessState.Unverified, status.State);
        Assert.Null(status.LastVerifiedCopy);
        Assert.Equal(new GraphUnverifiedCopy("ro", "b-ro", done, CopyLevel.ReceivedOnly), status.UnverifiedCopy);
    }

    [Fact]
    public void A_received_only_copy_newer_than_the_verified_one_turns_the_graph_unverified_until_a_verified_one_follows()
    {
        var verified = Run("v1", RunStatus.Succeeded, _clock.GetUtcNow().AddHours(-30), _clock.GetUtcNow().AddHours(-29));
        var secondRead = Run("sr", RunStatus.Succeeded, _clock.GetUtcNow().AddHours(-6), _clock.GetUtcNow().AddHours(-5), verification: Verification.SecondRead);
        var status = Evaluate(_clock.GetUtcNow().AddDays(-30), verified, secondRead);
        Assert.Equal(FreshnessState.Unverified, status.State);
        Assert.Equal("v1", status.LastVerifiedCopy!.RunId);
        Assert.Equal("sr", status.UnverifiedCopy!.RunId);

        var again = Run("v2", RunStatus.Succeeded, _clock.GetUtcNow().AddHours(-1), _clock.GetUtcNow().AddMinutes(-30));
        status = Evaluate(_clock.GetUtcNow().AddDays(-30), verified, secondRead, again);
        Assert.Equal(FreshnessState.Fresh, status.State);
        Assert.Null(status.UnverifiedCopy);
    }

    [Fact]
    public void A_multipart_and_an_empty_file_are_verified_against_their_source()
    {
        var done = _clock.GetUtcNow().AddHours(-2);
        var run = Run("mp", RunStatus.Succeeded, done.AddMinutes(-10), done, verification: Verification.SourceMultipartMd5);
        run.Files[1].Verification = Verification.EmptySource;
        Assert.Equal(FreshnessState.Fresh, Evaluate(_clock.GetUtcNow().AddDays(-3), run).State);
    }

    [Fact]
    public void The_default_threshold_is_twice_the_interval_plus_the_job_deadline()
    {
        Assert.Equal(TimeSpan.FromHours(54), GraphFreshness.DefaultThreshold(Schedule, Deadline, _clock.GetUtcNow()));
        var hourly = ScheduleBackupsHandler.Parse("0 15 * * * *");
        Assert.Equal(TimeSpan.FromHours(2) + Deadline, GraphFreshness.DefaultThreshold(hourly, Deadline, _clock.GetUtcNow()));
    }

    [Fact]
    public void A_graph_configured_a_minute_ago_is_not_stale()
    {
        var status = Evaluate(_clock.GetUtcNow().AddMinutes(-1));
        Assert.Equal(FreshnessState.NeverSucceeded, status.State);
        Assert.Null(status.StaleSince);
        Assert.Null(status.LastRun);
        Assert.Null(status.LastVerifiedCopy);
        Assert.Equal(new DateTimeOffset(2026, 12, 2, 2, 0, 0, TimeSpan.Zero), status.NextOccurrence);
    }

    [Fact]
    public void A_graph_that_never_succeeds_turns_stale_one_threshold_after_it_was_first_seen()
    {
        var firstSeen = _clock.GetUtcNow();
        _clock.Advance(Threshold - TimeSpan.FromSeconds(1));
        var failed = Run("r1", RunStatus.Failed, _clock.GetUtcNow().AddHours(-1), _clock.GetUtcNow());
        Assert.Equal(FreshnessState.NeverSucceeded, Evaluate(firstSeen, failed).State);
        _clock.Advance(TimeSpan.FromSeconds(1));
        var status = Evaluate(firstSeen, failed);
        Assert.Equal(FreshnessState.Stale, status.State);
        Assert.Equal(firstSeen + Threshold, status.StaleSince);
        Assert.Equal("r1", status.LastRun!.Id);
        Assert.Null(status.LastVerifiedCopy);
    }

    [Fact]
    public void A_recent_verified_copy_is_fresh_and_described()
    {
        var done = _clock.GetUtcNow().AddHours(-10);
        var status = Evaluate(_clock.GetUtcNow().AddDays(-30), Run("ok", RunStatus.Succeeded, done.AddMinutes(-20), done));
        Assert.Equal(FreshnessState.Fresh, status.State);
        Assert.Equal(new GraphVerifiedCopy("ok", "b-ok", done, 123, 2), status.LastVerifiedCopy);
    }

    [Fact]
    public void A_graph_whose_last_success_is_old_is_stale_even_while_a_run_is_in_progress()
    {
        var old = _clock.GetUtcNow() - Threshold - TimeSpan.FromMinutes(5);
        var status = Evaluate(_clock.GetUtcNow().AddDays(-30),
            Run("old", RunStatus.Succeeded, old.AddMinutes(-30), old),
            Run("now", RunStatus.Running, _clock.GetUtcNow().AddMinutes(-3)));
        Assert.Equal(FreshnessState.Stale, status.State);
        Assert.Equal("now", status.LastRun!.Id);
        Assert.Equal(RunStatus.Running, status.LastRun.Status);
        Assert.Equal("old", status.LastVerifiedCopy!.RunId);
    }

    [Fact]
    public void A_hung_run_does_not_make_a_graph_fresh()
    {
        var old = _clock.GetUtcNow().AddDays(-5);
        var hung = Run("hung", RunStatus.Running, _clock.GetUtcNow().AddHours(-40));
        hung.Step = RunStep.BackingUp;
        var status = Evaluate(_clock.GetUtcNow().AddDays(-30), Run("old", RunStatus.Succeeded, old, old.AddMinutes(10)), hung);
        Assert.Equal(FreshnessState.Stale, status.State);
        Assert.Equal(RunStep.BackingUp, status.LastRun!.Step);
    }

    [Fact]
    public void Failures_after_a_verified_copy_leave_it_fresh_until_the_threshold_passes()
    {
        var done = _clock.GetUtcNow();
        var success = Run("ok", RunStatus.Succeeded, done.AddMinutes(-10), done);
        _clock.Advance(TimeSpan.FromHours(30));
        var partial = Run("partial", RunStatus.PartiallyFailed, _clock.GetUtcNow().AddHours(-1), _clock.GetUtcNow());
        Assert.Equal(FreshnessState.Fresh, Evaluate(done.AddDays(-9), success, partial).State);
        _clock.Advance(Threshold - TimeSpan.FromHours(30));
        Assert.Equal(FreshnessState.Stale, Evaluate(done.AddDays(-9), success, partial).State);
    }

    [Fact]
    public void Only_this_graphs_backup_runs_count()
    {
        var done = _clock.GetUtcNow().AddHours(-1);
        var status = Evaluate(_clock.GetUtcNow().AddDays(-30),
            Run("other", RunStatus.Succeeded, done, done, graph: "g2"),
            Run("import", RunStatus.Succeeded, done, done, kind: RunKind.Import),
            Run("restore", RunStatus.Succeeded, done, done, kind: RunKind.EngineRestore));
        Assert.Equal(FreshnessState.Stale, status.State);
        Assert.Null(status.LastRun);
    }

    [Fact]
    public void A_run_that_followed_another_runs_copy_counts_when_it_succeeded()
    {
        var done = _clock.GetUtcNow().AddHours(-1);
        var follower = Run("follower", RunStatus.Succeeded, done.AddMinutes(-5), done);
        follower.FollowsRunId = "leader";
        Assert.Equal(FreshnessState.Fresh, Evaluate(_clock.GetUtcNow().AddDays(-30), follower).State);
    }
}
