using System.Text.Json.Nodes;
using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.Scheduling;

namespace BackupRelay.Tests.Unit;

public sealed class PipelineUnitTests
{
    [Theory]
    [InlineData("\"{\\\"v\\\":1}\"", "{\"v\":1}")] // the host's double encoding
    [InlineData("{\"v\":1}", "{\"v\":1}")] // the docs' single encoding
    [InlineData("plain text", "plain text")]
    public void Queue_message_is_unwrapped_once_more_when_encoded_twice(string dataValue, string expected)
    {
        var payload = new JsonObject { ["Data"] = new JsonObject { ["message"] = dataValue } };
        Assert.Equal(expected, CustomHandlerEndpoints.QueueMessage(payload));
    }

    [Fact]
    public void Queue_message_given_as_an_object_is_kept_as_json()
    {
        var payload = JsonNode.Parse("""{"Data":{"message":{"v":1,"runId":"r"}}}""")!.AsObject();
        Assert.Equal("""{"v":1,"runId":"r"}""", CustomHandlerEndpoints.QueueMessage(payload));
    }

    [Theory]
    [InlineData("""{"Metadata":{"DequeueCount":"3"}}""", 3)]
    [InlineData("""{"Metadata":{"DequeueCount":3}}""", 3)]
    [InlineData("""{"Metadata":{"DequeueCount":"\"4\""}}""", 4)]
    [InlineData("""{"Metadata":{}}""", 1)]
    public void Dequeue_count_is_read_as_number_or_string(string json, long expected) =>
        Assert.Equal(expected, CustomHandlerEndpoints.DequeueCount(JsonNode.Parse(json)!.AsObject()));

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

        var rules = HostQueueOptions.Load(Path.Combine(root, "host.json"));
        Assert.Equal(16, rules.BatchSize);
        Assert.Equal(5, rules.MaxDequeueCount);
        Assert.Equal(TimeSpan.FromSeconds(30), rules.VisibilityTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), rules.MaxPollingInterval);
    }

    [Fact]
    public void Every_function_folder_is_a_function_of_the_handler()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Functions.sln")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        var folders = Directory.GetDirectories(root).Where(d => File.Exists(Path.Combine(d, "function.json"))).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(
            ["BackupNow", BackupRelay.Messaging.FunctionNames.CopyBackupFile, "GetGraph", "GetRun", "Health", "ImportBackup", "ListGraphs", "ListRuns", BackupRelay.Messaging.FunctionNames.Notify,
             BackupRelay.Messaging.FunctionNames.PollBackupJob, BackupRelay.Messaging.FunctionNames.PollOperation, "RestoreEngine", "RestoreFromCopy",
             BackupRelay.Messaging.FunctionNames.ScheduleBackups, BackupRelay.Messaging.FunctionNames.StartBackup,
             BackupRelay.Messaging.FunctionNames.UploadToObs],
            folders);

        // HTTP functions are HTTP-only (one httpTrigger in, one http out) so the host forwards the request as is.
        foreach (var folder in folders)
        {
            var bindings = JsonNode.Parse(File.ReadAllText(Path.Combine(root, folder!, "function.json")))!["bindings"]!.AsArray();
            if (bindings[0]!["type"]!.GetValue<string>() == "httpTrigger")
            {
                Assert.Equal(2, bindings.Count);
                Assert.Equal("http", bindings[1]!["type"]!.GetValue<string>());
            }
            else
            {
                Assert.Single(bindings);
            }
        }

        var schedule = JsonNode.Parse(File.ReadAllText(Path.Combine(root, "ScheduleBackups", "function.json")))!["bindings"]![0]!;
        Assert.Equal("%Backup__Schedule%", schedule["schedule"]!.GetValue<string>());
        Assert.False(schedule["runOnStartup"]!.GetValue<bool>());
        foreach (var (folder, queue) in new[] { ("StartBackup", QueueNames.StartBackup), ("PollBackupJob", QueueNames.PollBackupJob), ("CopyBackupFile", QueueNames.CopyBackupFile), ("PollOperation", QueueNames.PollOperation), ("Notify", QueueNames.Notify) })
        {
            var binding = JsonNode.Parse(File.ReadAllText(Path.Combine(root, folder, "function.json")))!["bindings"]![0]!;
            Assert.Equal(queue, binding["queueName"]!.GetValue<string>());
            Assert.Equal(CustomHandlerEndpoints.QueueBinding, binding["name"]!.GetValue<string>());
        }
    }
}
