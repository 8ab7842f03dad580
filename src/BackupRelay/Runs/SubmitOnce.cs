using BackupRelay.Messaging;

namespace BackupRelay.Runs;

/// <summary>What an attempt to start a run's long-running job came to.</summary>
public abstract record JobStart
{
    /// <summary>The job runs: submitted now, or adopted from an earlier attempt. <paramref name="BackupId"/>: the backup it makes, when told.</summary>
    /// <param name="Adopted">Found running, not started by this claim's own call: another run may follow the same job.</param>
    public sealed record Started(string JobId, string? BackupId = null, bool Adopted = false) : JobStart;

    /// <summary>Huawei Cloud refused it for good: the run fails with the reason.</summary>
    public sealed record Refused(string Reason) : JobStart;

    /// <summary>Not now (the graph is busy): the message comes back later.</summary>
    public sealed record Busy(string Reason) : JobStart;
}

/// <summary>One submission of a run's job, as <see cref="SubmitOnce"/> carries it out.</summary>
/// <param name="Nonce">The message's own id: its redelivery takes its claim over at once.</param>
/// <param name="Lease">How long a claim holds off other messages (then anyone may take over).</param>
/// <param name="Step">The step the run is at while its job is submitted, and where a refusal is recorded.</param>
/// <param name="JobStep">The step the run follows its job at.</param>
/// <param name="Start">Adopts the job an earlier claim may have started (given that claim's time) or submits one.</param>
/// <param name="SendFirstPoll">Sends the job's first poll for the stored run.</param>
/// <param name="OnClaim">More the claim writes on the record.</param>
/// <param name="OnJob">More written with the job.</param>
/// <param name="WhenHeld">The answer when another message holds a fresh claim.</param>
/// <param name="OnDuplicate">Told when this message stands aside: the job is recorded, the run ended, or another message holds the claim.</param>
public sealed record JobSubmission(
    string RunId,
    string Nonce,
    TimeSpan Lease,
    RunStep Step,
    RunStep JobStep,
    Func<DateTimeOffset?, CancellationToken, Task<JobStart>> Start,
    Func<RunRecord, CancellationToken, Task> SendFirstPoll,
    Action<RunRecord>? OnClaim = null,
    Action<RunRecord>? OnJob = null,
    HandlerResult? WhenHeld = null,
    Action? OnDuplicate = null);

/// <summary>
/// The submit-once protocol of add-backup and of import: a run's job is submitted once, across duplicate
/// messages and crashes. A message first claims the submission on the record (<see cref="RunRecord.TryClaimSubmission"/>):
/// while another message's claim is fresh it stands aside; the claimant's own redelivery, or anyone once the claim
/// is stale, takes over and first looks for the job the earlier claimant may have started (adopts it) before
/// submitting one. The job is recorded, then its first poll sent; a duplicate that finds the job recorded but no
/// poll counted sends one more (polls are numbered, so an extra one is harmless).
/// </summary>
public sealed class SubmitOnce(IRunRecords runs, TimeProvider time)
{
    public async Task<HandlerResult> SubmitAsync(JobSubmission submission, CancellationToken cancellationToken)
    {
        DateTimeOffset? previousClaim = null;
        var claimed = await runs.UpdateAsync(submission.RunId, r =>
        {
            if (!r.TryClaimSubmission(submission.Nonce, submission.Step, time.GetUtcNow(), submission.Lease, out var previous))
            {
                return false;
            }

            previousClaim = previous;
            submission.OnClaim?.Invoke(r);
            return true;
        }, cancellationToken);
        if (claimed.IsFinished || claimed.JobId is not null || claimed.SubmitClaim != submission.Nonce)
        {
            submission.OnDuplicate?.Invoke();
            return claimed.IsFinished || claimed.JobId is not null ? HandlerResult.Done : submission.WhenHeld ?? HandlerResult.Done;
        }

        switch (await submission.Start(previousClaim, cancellationToken))
        {
            case JobStart.Refused refused:
                await runs.FailAsync(submission.RunId, time.GetUtcNow(), submission.Step, refused.Reason, cancellationToken);
                return HandlerResult.Done;
            case JobStart.Busy busy:
                return HandlerResult.Retry(busy.Reason);
            case JobStart.Started started:
                var stored = await runs.UpdateAsync(submission.RunId, r =>
                {
                    if (r.JobId is not null || r.IsFinished)
                    {
                        return false;
                    }

                    r.RecordJob(started.JobId, submission.JobStep, time.GetUtcNow(), started.BackupId, adopted: started.Adopted);
                    submission.OnJob?.Invoke(r);
                    return true;
                }, cancellationToken);
                if (!stored.IsFinished)
                {
                    await submission.SendFirstPoll(stored, cancellationToken);
                }

                return HandlerResult.Done;
            default:
                throw new InvalidOperationException("unknown job start");
        }
    }

    /// <summary>
    /// A message that finds the run's job already recorded: the delivery that recorded it may have died before
    /// its first poll, so one more is sent while no poll has been counted (a numbered poll's duplicate is dropped).
    /// </summary>
    public static async Task ResendFirstPollAsync(RunRecord run, Func<RunRecord, Task> send)
    {
        if (run.JobId is not null && !run.IsFinished && run.PollCount == 0)
        {
            await send(run);
        }
    }
}
