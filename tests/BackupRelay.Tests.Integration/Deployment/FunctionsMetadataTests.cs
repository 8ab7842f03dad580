using System.Text.Json.Nodes;
using BackupRelay.Tests.Integration.Pipeline;

namespace BackupRelay.Tests.Integration.Deployment;

/// <summary>
/// The published app's <c>functions.metadata</c> (what the Functions host reads) against one table:
/// every function's trigger, queue, connection, schedule, route, methods and auth level.
/// </summary>
public sealed class FunctionsMetadataTests
{
    private const string Storage = "AzureWebJobsStorage";

    public static TheoryData<string, string, string?, string?, string?, string?, string?> Expected => new()
    {
        // name, trigger, queue, schedule, route, methods, authLevel
        { "ScheduleBackups", "timerTrigger", null, "%Backup__Schedule%", null, null, null },
        { "ScheduleDrills", "timerTrigger", null, "0 * * * * *", null, null, null },
        { "StartBackup", "queueTrigger", "backup-start", null, null, null, null },
        { "PollBackupJob", "queueTrigger", "backup-poll", null, null, null, null },
        { "CopyBackupFile", "queueTrigger", "backup-copy", null, null, null, null },
        { "PollOperation", "queueTrigger", "operation-poll", null, null, null, null },
        { "Notify", "queueTrigger", "notify", null, null, null, null },
        { "UploadToObs", "queueTrigger", "restore-upload", null, null, null, null },
        { "Health", "httpTrigger", null, null, "health", "get", "Anonymous" },
        { "RestoreEngine", "httpTrigger", null, null, "engines/{engineId}/backups/{backupId}/recovery", "post", "Function" },
        { "ImportBackup", "httpTrigger", null, null, "graphs/{graphId}/backups/import", "post", "Function" },
        { "BackupNow", "httpTrigger", null, null, "graphs/{graphId}/backups", "post", "Function" },
        { "RestoreFromCopy", "httpTrigger", null, null, "graphs/{graphId}/restores", "post", "Function" },
        { "GetRun", "httpTrigger", null, null, "runs/{runId}", "get", "Function" },
        { "ListRuns", "httpTrigger", null, null, "runs", "get", "Function" },
        { "ListGraphs", "httpTrigger", null, null, "graphs", "get", "Function" },
        { "GetGraph", "httpTrigger", null, null, "graphs/{graphId}", "get", "Function" },
        { "ReplayPoison", "httpTrigger", null, null, "queues/{queue}/poison/replay", "post", "Admin" },
    };

    private static JsonArray Metadata() => JsonNode.Parse(File.ReadAllText(Path.Combine(WorkerApp.Directory, "functions.metadata")))!.AsArray();

    [Theory]
    [MemberData(nameof(Expected))]
    public void Each_function_is_published_with_its_trigger(string name, string trigger, string? queue, string? schedule, string? route, string? methods,
        string? authLevel)
    {
        var function = Metadata().Single(f => f!["name"]!.GetValue<string>() == name)!;
        Assert.Equal("dotnet-isolated", function["language"]!.GetValue<string>());
        var binding = function["bindings"]!.AsArray().Single(b => b!["type"]!.GetValue<string>().EndsWith("Trigger", StringComparison.Ordinal))!;
        Assert.Equal(trigger, binding["type"]!.GetValue<string>());
        Assert.Equal(queue, binding["queueName"]?.GetValue<string>());
        Assert.Equal(queue is null ? null : Storage, binding["connection"]?.GetValue<string>());
        Assert.Equal(schedule, binding["schedule"]?.GetValue<string>());
        Assert.Equal(route, binding["route"]?.GetValue<string>());
        Assert.Equal(methods, binding["methods"] is JsonArray m ? string.Join(",", m.Select(x => x!.GetValue<string>())) : null);
        Assert.Equal(authLevel, binding["authLevel"]?.GetValue<string>());
        if (trigger == "timerTrigger")
        {
            // The backup schedule keeps its last occurrence (a missed one runs once, past due); the drill tick
            // looks at every drill's latest occurrence itself, so it needs no monitor.
            Assert.Equal(name == "ScheduleBackups", binding["useMonitor"]!.GetValue<bool>());
            Assert.False(binding["runOnStartup"]?.GetValue<bool>() ?? false);
        }
    }

    [Fact]
    public void The_package_holds_exactly_these_functions_and_the_worker_and_extension_files()
    {
        var names = Metadata().Select(f => f!["name"]!.GetValue<string>()).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Expected.Select(row => (string)row[0]).Order(StringComparer.Ordinal), names);
        var worker = JsonNode.Parse(File.ReadAllText(Path.Combine(WorkerApp.Directory, "worker.config.json")))!["description"]!;
        Assert.Equal("dotnet-isolated", worker["language"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(WorkerApp.Directory, worker["defaultWorkerPath"]!.GetValue<string>())));
        // The host-side WebJobs extensions the Sdk restored: listed in extensions.json, their assemblies in .azurefunctions/.
        var extensions = JsonNode.Parse(File.ReadAllText(Path.Combine(WorkerApp.Directory, "extensions.json")))!["extensions"]!.AsArray();
        var queues = extensions.Single(e => e!["name"]!.GetValue<string>() == "AzureStorageQueues")!;
        Assert.True(File.Exists(Path.Combine(WorkerApp.Directory, queues["hintPath"]!.GetValue<string>())));
        var host = JsonNode.Parse(File.ReadAllText(Path.Combine(WorkerApp.Directory, "host.json")))!;
        Assert.NotNull(host["extensions"]?["queues"]?["maxDequeueCount"]);
        Assert.NotNull(host["functionTimeout"]);
    }
}
