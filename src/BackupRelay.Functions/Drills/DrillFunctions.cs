using BackupRelay.Drills;
using BackupRelay.Messaging;
using Microsoft.Azure.Functions.Worker;

namespace BackupRelay.Functions.Drills;

/// <summary>Scheduled restore drills: each minute, the drills that are due start (<see cref="DrillScheduler"/>).</summary>
public sealed class DrillFunctions(DrillScheduler drills)
{
    /// <summary>
    /// Every minute on one instance (the runtime's timer lock); no <c>useMonitor</c>: each tick looks at every drill
    /// schedule's latest occurrence itself, so a missed tick loses nothing.
    /// </summary>
    [Function(FunctionNames.ScheduleDrills)]
    public Task ScheduleDrillsAsync([TimerTrigger(DrillScheduler.TickSchedule, UseMonitor = false)] TimerInfo timer, CancellationToken cancellationToken) =>
        drills.HandleAsync(cancellationToken);
}
