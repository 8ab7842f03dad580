using BackupRelay.Configuration;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Runs;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace BackupRelay.Tests.Unit.Handlers;

/// <summary>What every handler test builds its handler from: fakes of the run records, the queues and GES, and a clock.</summary>
public abstract class HandlerFixture
{
    protected const string Graph = "g-orders";

    protected FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 12, 5, 2, 0, 0, TimeSpan.Zero));
    protected FakeRunRecords Runs { get; } = new();
    protected RecordingSender Sent { get; } = new();
    protected FakeGesApi Ges { get; } = new();

    protected BackupOptions Settings { get; } = new()
    {
        Graphs = [new GraphOptions { GraphId = Graph }],
        PollInitialDelay = TimeSpan.FromSeconds(15),
    };

    protected IOptions<BackupOptions> Options => Microsoft.Extensions.Options.Options.Create(Settings);

    protected GesClient GesClient => new(Ges, Microsoft.Extensions.Options.Options.Create(new HuaweiCloudOptions { ProjectId = "0123456789abcdef0123456789abcdef" }));

    protected NumberedPolls Polls => new(Runs, Clock);

    protected SubmitOnce Submit => new(Runs, Clock);

    /// <summary>A running backup run following job "job-1" at poll <paramref name="polls"/>.</summary>
    protected RunRecord BackingUp(string id = "run-1", int polls = 0, TimeSpan? deadlineIn = null)
    {
        var now = Clock.GetUtcNow();
        var run = new RunRecord
        {
            Id = id, GraphId = Graph, Status = RunStatus.Running, Step = RunStep.BackingUp, JobId = "job-1", PollCount = polls,
            CreatedAt = now, UpdatedAt = now, SubmittedAt = now, Deadline = now + (deadlineIn ?? TimeSpan.FromHours(6)),
        };
        Runs.Put(run);
        return run;
    }
}
