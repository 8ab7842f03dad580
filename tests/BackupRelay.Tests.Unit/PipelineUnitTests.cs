using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.Scheduling;

namespace BackupRelay.Tests.Unit;

public sealed class PipelineUnitTests
{
    [Fact]
    public void Occurrence_is_the_latest_scheduled_time_at_or_before_the_tick()
    {
        var schedule = "0 0 2 * * *";
        var expected = new DateTimeOffset(2026, 11, 22, 2, 0, 0, TimeSpan.Zero);
        Assert.Equal(expected, ScheduleBackupsHandler.Occurrence(schedule, expected));
        Assert.Equal(expected, ScheduleBackupsHandler.Occurrence(schedule, expected.AddMilliseconds(-300)));
        Assert.Equal(expected, ScheduleBackupsHandler.Occurrence(schedule, expected.AddHours(5)));
        Assert.Equal(expected.AddDays(1), ScheduleBackupsHandler.Occurrence(schedule, expected.AddDays(1).AddSeconds(3)));
    }

    [Fact]
    public void Run_ids_are_path_safe_and_the_same_for_the_same_graph_and_occurrence()
    {
        var at = new DateTimeOffset(2026, 11, 22, 2, 0, 0, TimeSpan.Zero);
        var id = ScheduleBackupsHandler.RunId("g/1", at);
        Assert.Equal(id, ScheduleBackupsHandler.RunId("g/1", at));
        Assert.NotEqual(id, ScheduleBackupsHandler.RunId("g/2", at));
        Assert.NotEqual(id, ScheduleBackupsHandler.RunId("g/1", at.AddDays(1)));
        Assert.Matches("^sch-20261122T020000-[0-9a-f]{12}$", id);
    }

    [Fact]
    public void A_required_backup_setting_left_empty_is_refused_naming_it()
    {
        var options = new BackupOptions { Schedule = "" };
        options.Graphs.Add(new GraphOptions { GraphId = "" });
        var failures = new BackupOptionsValidator().Validate(null, options).Failures!.ToList();
        Assert.Contains("Backup__Schedule is required.", failures);
        Assert.Contains("Backup__Graphs__0__GraphId is required.", failures);
        Assert.Equal(2, failures.Count);
    }

    [Fact]
    public void Bad_backup_settings_name_the_setting()
    {
        var options = new BackupOptions { Schedule = "every day", PollInitialDelay = TimeSpan.Zero };
        options.Graphs.Add(new GraphOptions { GraphId = "bad/id" });
        options.Graphs.Add(new GraphOptions { GraphId = "ok", Name = "a/b" });
        var failures = string.Join("\n", new BackupOptionsValidator().Validate(null, options).Failures!);
        Assert.Contains("Backup__Schedule", failures, StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__0__GraphId", failures, StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__1__Name", failures, StringComparison.Ordinal);
        Assert.Contains("Backup__PollInitialDelay", failures, StringComparison.Ordinal);
        Assert.True(new BackupOptionsValidator().Validate(null, new BackupOptions()).Succeeded);
        Assert.Contains("Destination__Container", string.Join("", new DestinationOptionsValidator().Validate(null, new DestinationOptions { Container = "Bad_Name" }).Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void Host_json_queue_rules_are_read_from_the_repository_file()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Functions.sln")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        var rules = HostJson.Read(Path.Combine(root, "host.json"), _ => null);
        Assert.Equal(16, rules.BatchSize);
        Assert.Equal(5, rules.MaxDequeueCount);
        Assert.Equal(TimeSpan.FromSeconds(30), rules.VisibilityTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), rules.MaxPollingInterval);
    }
}
