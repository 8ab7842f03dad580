using BackupRelay.Messaging;

namespace BackupRelay.Runs;

/// <summary>
/// The numbered-poll protocol of the two job followers (<c>PollBackupJob</c>, <c>PollOperation</c>). Each poll
/// message carries its number; the run counts the polls done (<see cref="RunRecord.PollCount"/>). A poll below
/// the count is a duplicate and is dropped; one above it was sent just before the previous poll was counted and
/// comes back later (dropping it would end the chain); the one equal to it is acted on. The next poll is sent
/// before this one is counted — "send first, count after" — so a crash between the two leaves a duplicate,
/// which its number drops, and never a chain with no poll in it.
/// </summary>
public sealed class NumberedPolls(IRunRecords runs, TimeProvider time)
{
    /// <summary>Null when poll <paramref name="attempt"/> is the one to act on; otherwise what to do with its message.</summary>
    public static HandlerResult? Admit(RunRecord run, int attempt)
    {
        if (run.IsFinished || attempt < run.PollCount || run.JobId is null)
        {
            return HandlerResult.Done;
        }

        return attempt > run.PollCount ? HandlerResult.Retry($"poll {attempt} arrived before poll {run.PollCount} was counted") : null;
    }

    /// <summary>Whether the run's deadline has passed (a run without one waits as long as its job runs).</summary>
    public bool DeadlinePassed(RunRecord run) => run.Deadline is { } deadline && time.GetUtcNow() > deadline;

    /// <summary>Sends poll <paramref name="attempt"/> + 1 (through <paramref name="sendNext"/>), then counts this one.</summary>
    public async Task<HandlerResult> AgainAsync(string runId, int attempt, Func<int, Task> sendNext, CancellationToken cancellationToken)
    {
        await sendNext(attempt + 1);
        await CountAsync(runId, attempt, null, cancellationToken);
        return HandlerResult.Done;
    }

    /// <summary>
    /// Counts poll <paramref name="attempt"/> done, writing <paramref name="alsoRecord"/>'s changes with the count;
    /// nothing changes if the run ended or the poll was counted meanwhile (a duplicate delivery).
    /// </summary>
    public Task<RunRecord> CountAsync(string runId, int attempt, Action<RunRecord>? alsoRecord, CancellationToken cancellationToken) =>
        runs.UpdateAsync(runId, r =>
        {
            if (r.IsFinished || !r.CountPoll(attempt, time.GetUtcNow()))
            {
                return false;
            }

            alsoRecord?.Invoke(r);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Records what poll <paramref name="attempt"/> found, before it sends anything on: written only while that
    /// poll is still the current one. Returns the stored record and whether this write took.
    /// </summary>
    public async Task<(RunRecord Run, bool Current)> RecordAsync(string runId, int attempt, Action<RunRecord> change, CancellationToken cancellationToken)
    {
        var stored = await runs.UpdateAsync(runId, r =>
        {
            if (!r.IsCurrentPoll(attempt))
            {
                return false;
            }

            change(r);
            r.Touch(time.GetUtcNow());
            return true;
        }, cancellationToken);
        return (stored, stored.IsCurrentPoll(attempt));
    }
}
