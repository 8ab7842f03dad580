namespace BackupRelay.Runs;

/// <summary>
/// The run records as the queue handlers and their protocols use them: <see cref="RunStore"/> in the app,
/// an in-memory store in the handlers' unit tests. Every change goes through <see cref="UpdateAsync"/>, whose
/// mutation runs on the stored record and returns false to leave it as it is.
/// </summary>
public interface IRunRecords
{
    Task<RunRecord?> GetAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>Creates the record, or returns the one already stored under its id (a duplicate delivery).</summary>
    Task<(RunRecord Record, bool Created)> CreateAsync(RunRecord record, CancellationToken cancellationToken = default);

    /// <summary>Read-modify-write, safe against concurrent writers; returns the record as stored afterwards.</summary>
    Task<RunRecord> UpdateAsync(string runId, Func<RunRecord, bool> mutate, CancellationToken cancellationToken = default);

    /// <summary>
    /// Claims the copy of GES backup <paramref name="backupId"/> for <paramref name="runId"/> and returns the run
    /// that owns it: one run copies a backup, others that adopted it follow (see <see cref="CopyClaims"/>).
    /// </summary>
    Task<string> ClaimCopyAsync(string backupId, string runId, CancellationToken cancellationToken = default);
}

/// <summary>The changes every handler makes the same way.</summary>
public static class RunRecordsExtensions
{
    /// <summary>
    /// Applies <paramref name="change"/> to the stored record's file <paramref name="fileName"/> and returns what it
    /// returned (the <see cref="RunFile"/> transitions return the bytes they add); null: the change refused, nothing written.
    /// </summary>
    public static async Task<long?> UpdateFileAsync(this IRunRecords runs, string runId, string fileName, Func<RunFile, long?> change, DateTimeOffset now,
        CancellationToken cancellationToken = default)
    {
        long? result = null;
        await runs.UpdateAsync(runId, r =>
        {
            result = change(r.FileNamed(fileName));
            r.Touch(now);
            return result is not null;
        }, cancellationToken);
        return result;
    }

    /// <summary>Fails the run at <paramref name="step"/> with a reason unless it has already ended.</summary>
    public static Task<RunRecord> FailAsync(this IRunRecords runs, string runId, DateTimeOffset now, RunStep step, string reason,
        CancellationToken cancellationToken = default) =>
        runs.FailAsync(runId, now, step.Name(), reason, cancellationToken);

    /// <summary>Fails the run with a reason unless it has already ended, the error naming <paramref name="where"/> it happened.</summary>
    public static Task<RunRecord> FailAsync(this IRunRecords runs, string runId, DateTimeOffset now, string where, string reason,
        CancellationToken cancellationToken = default) =>
        runs.UpdateAsync(runId, r =>
        {
            if (r.IsFinished)
            {
                return false;
            }

            r.Fail(now, where, reason);
            return true;
        }, cancellationToken);
}
