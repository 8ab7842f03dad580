using BackupRelay.Messaging;
using BackupRelay.Runs;

namespace BackupRelay.Tests.Unit.Handlers;

/// <summary>
/// The submit-once protocol on its own (add-backup in StartBackup, the import in UploadToObs): what a delivery
/// does with a claim held, a job an earlier claimant started, a busy graph and a refusal.
/// </summary>
public sealed class SubmitOnceTests : HandlerFixture
{
    private readonly List<DateTimeOffset?> _starts = [];
    private readonly List<string> _firstPolls = [];

    private void Uploaded()
    {
        var now = Clock.GetUtcNow();
        Runs.Put(new RunRecord { Id = "rfc-1", Kind = RunKind.RestoreFromCopy, GraphId = Graph, Status = RunStatus.Running, Step = RunStep.Uploading, CreatedAt = now, UpdatedAt = now });
    }

    private Task<HandlerResult> SubmitAsync(string nonce, JobStart answer) =>
        Submit.SubmitAsync(new JobSubmission("rfc-1", nonce, TimeSpan.FromMinutes(2), RunStep.Importing, RunStep.Importing,
            (previous, _) =>
            {
                _starts.Add(previous);
                return Task.FromResult(answer);
            },
            (run, _) =>
            {
                _firstPolls.Add($"{run.Id}@{run.PollCount}");
                return Task.CompletedTask;
            },
            WhenHeld: HandlerResult.Retry("held")), CancellationToken.None);

    [Fact]
    public async Task The_first_claimant_submits_records_the_job_and_sends_the_first_poll()
    {
        Uploaded();

        Assert.Equal(HandlerResult.Done, await SubmitAsync("n1", new JobStart.Started("job-1")));

        Assert.Equal([null], _starts); // no earlier claim: nothing to adopt
        var run = Runs["rfc-1"];
        Assert.Equal(("job-1", RunStep.Importing, "n1"), (run.JobId, run.Step, run.SubmitClaim));
        Assert.Equal(["rfc-1@0"], _firstPolls);
    }

    [Fact]
    public async Task Another_delivery_while_the_claim_is_fresh_waits_and_takes_over_after_the_lease_with_the_earlier_claims_time()
    {
        Uploaded();
        var firstClaim = Clock.GetUtcNow();
        await Assert.ThrowsAsync<InvalidOperationException>(() => Submit.SubmitAsync(new JobSubmission("rfc-1", "n1", TimeSpan.FromMinutes(2),
            RunStep.Importing, RunStep.Importing, (_, _) => throw new InvalidOperationException("the claimant dies"), (_, _) => Task.CompletedTask),
            CancellationToken.None));

        Assert.Equal(HandlerResult.Retry("held"), await SubmitAsync("n2", new JobStart.Started("job-2")));
        Assert.Empty(_starts);

        Clock.Advance(TimeSpan.FromMinutes(3));
        Assert.Equal(HandlerResult.Done, await SubmitAsync("n2", new JobStart.Started("job-2")));
        Assert.Equal([firstClaim], _starts); // told when the earlier claimant may have started a job, to adopt it
        Assert.Equal("job-2", Runs["rfc-1"].JobId);
    }

    [Fact]
    public async Task The_claimants_own_redelivery_takes_over_at_once()
    {
        Uploaded();
        await Assert.ThrowsAsync<InvalidOperationException>(() => Submit.SubmitAsync(new JobSubmission("rfc-1", "n1", TimeSpan.FromMinutes(2),
            RunStep.Importing, RunStep.Importing, (_, _) => throw new InvalidOperationException("crash"), (_, _) => Task.CompletedTask),
            CancellationToken.None));

        Assert.Equal(HandlerResult.Done, await SubmitAsync("n1", new JobStart.Started("job-1")));
        Assert.NotNull(Assert.Single(_starts));
    }

    [Fact]
    public async Task Every_later_claim_looks_back_to_the_first_claim_however_many_died_in_between()
    {
        Uploaded();
        var firstClaim = Clock.GetUtcNow();
        for (var attempt = 0; attempt < 2; attempt++)
        {
            // A claimant that submitted a job, then died before recording it; its message comes back minutes later.
            await Assert.ThrowsAsync<InvalidOperationException>(() => Submit.SubmitAsync(new JobSubmission("rfc-1", "n1", TimeSpan.FromMinutes(2),
                RunStep.Importing, RunStep.Importing, (_, _) => throw new InvalidOperationException("died after submitting"), (_, _) => Task.CompletedTask),
                CancellationToken.None));
            Clock.Advance(TimeSpan.FromMinutes(3));
        }

        await SubmitAsync("n1", new JobStart.Started("job-1"));

        // Not the second claim's time: a job the first claimant started would be missed, and submitted twice.
        Assert.Equal([firstClaim], _starts);
    }

    [Fact]
    public async Task Once_the_job_is_recorded_no_delivery_submits_again()
    {
        Uploaded();
        await SubmitAsync("n1", new JobStart.Started("job-1"));
        Clock.Advance(TimeSpan.FromHours(1));

        Assert.Equal(HandlerResult.Done, await SubmitAsync("n2", new JobStart.Started("job-2")));
        Assert.Single(_starts);
        Assert.Equal("job-1", Runs["rfc-1"].JobId);
    }

    [Fact]
    public async Task A_busy_graph_comes_back_later_and_a_refusal_fails_the_run_at_its_step()
    {
        Uploaded();
        var busy = await SubmitAsync("n1", new JobStart.Busy("graph busy: GES.7001"));
        Assert.Equal(HandlerResult.Retry("graph busy: GES.7001"), busy);
        Assert.Null(Runs["rfc-1"].JobId);
        Assert.False(Runs["rfc-1"].IsFinished);

        Assert.Equal(HandlerResult.Done, await SubmitAsync("n1", new JobStart.Refused("GES refused the import: GES.7000 bad path")));
        var run = Runs["rfc-1"];
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal(("importing", "GES refused the import: GES.7000 bad path"), (run.Errors[0].Step, run.Errors[0].Reason));
        Assert.Empty(_firstPolls);
    }

    [Fact]
    public async Task A_job_recorded_without_a_counted_poll_gets_its_first_poll_again_and_one_already_polled_does_not()
    {
        var sent = new List<int>();
        var run = new RunRecord { Id = "r", JobId = "job-1", Status = RunStatus.Running };
        await SubmitOnce.ResendFirstPollAsync(run, r => { sent.Add(r.PollCount); return Task.CompletedTask; });
        run.PollCount = 1;
        await SubmitOnce.ResendFirstPollAsync(run, r => { sent.Add(r.PollCount); return Task.CompletedTask; });
        Assert.Equal([0], sent);
    }
}
