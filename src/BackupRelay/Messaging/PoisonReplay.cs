using System.Text;
using System.Text.Json;
using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.Runs;
using Microsoft.Extensions.Logging;

namespace BackupRelay.Messaging;

/// <summary>What became of one poison message: <c>replayed</c> (sent back to its queue), <c>resumed</c> (its run resumed, then sent back) or <c>kept</c> (left in the poison queue, with why).</summary>
public sealed record ReplayedMessage(string MessageId, string Format, string? Function, string? RunId, string Outcome, string? Reason);

/// <summary>The answer of <c>POST /api/queues/{queue}/poison/replay</c>: counts by outcome, then each message.</summary>
public sealed record PoisonReplayAnswer(string Queue, int Replayed, int Resumed, int Kept, IReadOnlyList<ReplayedMessage> Messages);

/// <summary>
/// The one way back from a poison queue, for both of its formats: a message the app parked (a JSON wrapper with the function,
/// the reason and the original text) and a message the Functions runtime moved after <c>maxDequeueCount</c> failed deliveries
/// (the original text, as it was). Each is sent back to its queue as the original text, then deleted from the poison queue
/// (at least once: a replay cut short sends a message twice at worst, and every step is idempotent).
/// <para>
/// A message whose run ended because of it (the run failed naming that function) resumes the run first: a backup run goes on
/// at that function's step. Kept in the poison queue, with the reason in the answer: a message cut to fit when it was parked,
/// one that was never base64 (the runtime moved it verbatim), one whose run does not exist, ended otherwise, or is a restore
/// (a new request restores again).
/// </para>
/// </summary>
public sealed partial class PoisonReplay(WorkQueues queues, RunStore runs, TimeProvider time, ILogger<PoisonReplay> logger)
{
    /// <summary>How long the messages being replayed stay hidden from another replay.</summary>
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);

    /// <summary>Replays up to <paramref name="limit"/> messages (at most 32: one receive) of <c>&lt;queue&gt;-poison</c>.</summary>
    public async Task<IReadOnlyList<ReplayedMessage>> ReplayAsync(string queue, int limit, CancellationToken cancellationToken)
    {
        // Read as stored: a message the runtime moved may not be base64 at all, and is reported, not thrown on.
        var poison = queues.RawQueue(QueueNames.Poison(queue));
        if (!(await poison.ExistsAsync(cancellationToken)).Value)
        {
            return [];
        }

        var received = (await poison.ReceiveMessagesAsync(Math.Clamp(limit, 1, 32), Lease, cancellationToken)).Value;
        var results = new List<ReplayedMessage>(received.Length);
        foreach (var message in received)
        {
            var result = await ReplayOneAsync(queue, message.MessageId, message.Body.ToString(), cancellationToken);
            if (result.Outcome != Kept)
            {
                await poison.DeleteMessageAsync(message.MessageId, message.PopReceipt, cancellationToken);
            }

            Log.Replayed(logger, queue, message.MessageId, result.Outcome, result.RunId ?? "", result.Reason ?? "");
            results.Add(result);
        }

        return results;
    }

    private const string Replayed = "replayed";
    private const string Resumed = "resumed";
    private const string Kept = "kept";

    /// <summary>
    /// <c>POST /api/queues/{queue}/poison/replay[?limit=1..32]</c> (admin level: the master key): replays the poison queue of one
    /// of the app's work queues and says what became of each message.
    /// </summary>
    public async Task<Microsoft.AspNetCore.Http.IResult> HandleAsync(Microsoft.AspNetCore.Http.HttpContext context, string queue, string? limit)
    {
        var errors = new Dictionary<string, string[]>();
        if (!WorkQueues.WorkQueueNames.Contains(queue, StringComparer.Ordinal))
        {
            errors["queue"] = [$"queue must be one of {string.Join(", ", WorkQueues.WorkQueueNames)} (its poison queue is replayed)."];
        }

        var count = Http.HttpApi.QueryLimit(limit, 32, 32, errors);

        if (errors.Count > 0)
        {
            return Microsoft.AspNetCore.Http.TypedResults.ValidationProblem(errors);
        }

        var messages = await ReplayAsync(queue, count, context.RequestAborted);
        var answer = new PoisonReplayAnswer(queue, messages.Count(m => m.Outcome == Replayed), messages.Count(m => m.Outcome == Resumed),
            messages.Count(m => m.Outcome == Kept), messages);
        return Microsoft.AspNetCore.Http.Results.Json(answer, BackupRelayJson.Default.PoisonReplayAnswer);
    }

    private async Task<ReplayedMessage> ReplayOneAsync(string queue, string messageId, string stored, CancellationToken cancellationToken)
    {
        if (!TryBase64(stored, out var text))
        {
            return new ReplayedMessage(messageId, "runtime", null, null, Kept, "not base64: the runtime moved it as it came, and no function ever could read it");
        }

        // The app's wrapper, or the original message as the runtime moved it.
        var (format, function, original, cut) = ReadParked(text);
        if (original is null)
        {
            return new ReplayedMessage(messageId, format, function, null, Kept,
                cut is { } length ? $"cut to fit the queue when it was parked (it was {length} characters): it cannot be sent again whole" : "a parked record without its message");
        }

        var runId = MessageParser.Envelope(original).RunId;
        var outcome = Replayed;
        if (runId is not null)
        {
            var run = HuaweiCloudIds.IsValidId(runId) ? await runs.GetAsync(runId, cancellationToken) : null;
            if (run is null && queue != QueueNames.StartBackup)
            {
                // A start creates its run; any other step needs the run it moves on.
                return new ReplayedMessage(messageId, format, function, runId, Kept, $"run {runId} does not exist");
            }

            if (run is { IsFinished: true })
            {
                var refusal = StepAfter(queue, run) is { } step
                    ? await ResumeAsync(run.Id, QueueNames.Poison(queue), step, cancellationToken)
                    : $"a {queue} message does not resume a run";
                if (refusal is not null)
                {
                    return new ReplayedMessage(messageId, format, function, runId, Kept, refusal);
                }

                outcome = Resumed;
            }
        }

        await queues.SendTextAsync(queue, original, null, cancellationToken);
        return new ReplayedMessage(messageId, format, function, runId, outcome, null);
    }

    private async Task<string?> ResumeAsync(string runId, string poisonQueue, RunStep step, CancellationToken cancellationToken)
    {
        string? refusal = null;
        await runs.UpdateAsync(runId, r =>
        {
            refusal = r.Resume(time.GetUtcNow(), poisonQueue, step);
            return refusal is null;
        }, cancellationToken);
        return refusal;
    }

    /// <summary>Where a backup run goes on when the message of <paramref name="queue"/> comes back.</summary>
    private static RunStep? StepAfter(string queue, RunRecord run) => queue switch
    {
        QueueNames.StartBackup => RunStep.Starting,
        QueueNames.PollBackupJob => run.FollowsRunId is null ? RunStep.BackingUp : RunStep.Following,
        QueueNames.CopyBackupFile => RunStep.Copying,
        _ => null,
    };

    private static bool TryBase64(string stored, out string text)
    {
        text = "";
        var bytes = new byte[stored.Length];
        if (!Convert.TryFromBase64String(stored, bytes, out var length))
        {
            return false;
        }

        try
        {
            text = new UTF8Encoding(false, true).GetString(bytes, 0, length);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    /// <summary>The app's parked record (<see cref="ParkedMessage"/>: function, reason, parkedAt, the message), or the message itself.</summary>
    private static (string Format, string? Function, string? Original, int? Cut) ReadParked(string text)
    {
        try
        {
            var parked = JsonSerializer.Deserialize(text, BackupRelayJson.Default.ParkedMessage);
            if (parked is { Function.Length: > 0, Reason: not null } && parked.ParkedAt != default)
            {
                return ("parked", parked.Function, parked.OriginalLength is null ? parked.Message : null, parked.OriginalLength);
            }
        }
        catch (JsonException)
        {
            // Not JSON, or not the parked record: the original message as the runtime moved it.
        }

        return ("runtime", null, text, null);
    }

    private static partial class Log
    {
        [LoggerMessage(122, LogLevel.Warning, "Poison replay of {Queue}: message {MessageId} {Outcome} (run {RunId}) {Reason}")]
        public static partial void Replayed(ILogger logger, string queue, string messageId, string outcome, string runId, string reason);
    }
}
