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

    private static RunRecord Run(string id, RunStatus status, DateTimeOffset created, DateTimeOffset? completed = null, RunKind kind = RunKind.Backup, string graph = Graph) => new()
    {
        Id = id,
        Kind = kind,
        GraphId = graph,
        Status = status,
        CreatedAt = created,
        CompletedAt = completed,
        BackupId = "b-" + id,
        Files = [new RunFile { Name = "a.tar", Size = 100 }, new RunFile { Name = "b.tar", Size = 23 }],
    };

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
