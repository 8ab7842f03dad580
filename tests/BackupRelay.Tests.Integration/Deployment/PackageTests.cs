using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Text.Json.Nodes;
using BackupRelay.HuaweiCloud.Emulator;
using BackupRelay.LocalHost;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace BackupRelay.Tests.Integration.Deployment;

/// <summary>Builds the deployment package with build/package.sh, unpacks it and runs it as the Functions host would (the local host).</summary>
public sealed class PackageTests(ITestOutputHelper output) : IAsyncLifetime
{
    private string _work = "";

    public Task InitializeAsync()
    {
        _work = Directory.CreateTempSubdirectory("backuprelay-package-").FullName;
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_work, true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_package_is_the_published_worker_and_serves_every_function()
    {
        var zip = Path.Combine(_work, "app.zip");
        // The suite's own Release build (build/test.sh made it): packaged as deployed, without building it again.
        await RunAsync("bash", [Path.Combine(Azurite.RepositoryRoot(), "build", "package.sh"), zip, "--no-build"]);
        var app = Path.Combine(_work, "app");
        ZipFile.ExtractToDirectory(zip, app);

        // What the Functions host reads: the function list, the worker, the host-side extensions and host.json.
        var functions = JsonNode.Parse(File.ReadAllText(Path.Combine(app, "functions.metadata")))!.AsArray();
        Assert.Equal(18, functions.Count);
        Assert.Equal("dotnet-isolated", JsonNode.Parse(File.ReadAllText(Path.Combine(app, "worker.config.json")))!["description"]!["language"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(app, ".azurefunctions", "Microsoft.Azure.WebJobs.Extensions.Storage.Queues.dll")));
        var host = JsonNode.Parse(File.ReadAllText(Path.Combine(app, "host.json")))!;
        Assert.Null(host["customHandler"]);
        Assert.Null(host["extensionBundle"]);

        await using var emulator = await HuaweiCloudEmulator.StartAsync(DemoSeed.Create());
        var azurite = await Azurite.NewAccountAsync();
        var watch = Stopwatch.StartNew();
        await using var local = await LocalFunctionsHost.StartAsync(new LocalHostOptions
        {
            AppDirectory = app,
            HttpPort = 0,
            HostKeys = ["package-test-host-key-0123"],
            MasterKey = "package-test-master-key-0123",
            Settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
            {
                ["AzureWebJobsStorage"] = azurite.ConnectionString,
                ["Destination"] = azurite.ConnectionString,
                ["Destination__Container"] = "package-test",
                ["HuaweiCloud__Region"] = DemoSeed.Region,
                ["HuaweiCloud__ProjectId"] = DemoSeed.ProjectId,
                ["HuaweiCloud__Endpoints__Iam"] = emulator.BaseAddress.ToString(),
                ["HuaweiCloud__Endpoints__Ges"] = emulator.BaseAddress.ToString(),
                ["HuaweiCloud__Endpoints__Cse"] = emulator.BaseAddress.ToString(),
                ["HuaweiCloud__Auth__UserName"] = DemoSeed.UserName,
                ["HuaweiCloud__Auth__Password"] = DemoSeed.Password,
                ["HuaweiCloud__Auth__DomainName"] = DemoSeed.Domain,
                ["Backup__Graphs__0__GraphId"] = DemoSeed.GraphId,
            },
        }, NullLoggerFactory.Instance);
        output.WriteLine($"start-up (host start to the worker's functions loaded and its HTTP endpoint listening): {watch.ElapsedMilliseconds} ms");
        Assert.Equal(functions.Select(f => f!["name"]!.GetValue<string>()).Order(), local.Functions.Keys.Order());

        // Every HTTP route reaches the worker's own validation (400), not a missing route; the queue
        // functions answer a malformed message by parking it (the invocation succeeds).
        using var http = new HttpClient { BaseAddress = local.HttpAddress, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Add("x-functions-key", "package-test-host-key-0123");
        using (var first = await http.GetAsync("/api/runs/bad!id"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, first.StatusCode);
            output.WriteLine($"start-up to the first invocation answered (GET /api/runs/{{runId}} through the worker): {watch.ElapsedMilliseconds} ms");
        }

        foreach (var function in local.Functions.Values)
        {
            if (function.TriggerType == "httpTrigger")
            {
                var route = "/api/" + System.Text.RegularExpressions.Regex.Replace(function.Property("route")!, @"\{[^}]+\}", "bad!id");
                var method = new HttpMethod(function.Trigger["methods"]![0]!.GetValue<string>().ToUpperInvariant());
                using var request = new HttpRequestMessage(method, route)
                {
                    Content = method == HttpMethod.Get ? null : new StringContent("{}", System.Text.Encoding.UTF8, "application/json"),
                };
                if (function.Property("authLevel") == "Admin")
                {
                    request.Headers.Add("x-functions-key", "package-test-master-key-0123");
                }

                using var response = await http.SendAsync(request);
                Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable,
                    $"{function.Name} {route}: {(int)response.StatusCode}");
            }
            else if (function.TriggerType == "queueTrigger")
            {
                var answer = await local.InvokeAsync(function.Name, request =>
                {
                    request.InputData.Add(new Microsoft.Azure.Functions.Worker.Grpc.Messages.ParameterBinding
                    {
                        Name = function.BindingName,
                        Data = new Microsoft.Azure.Functions.Worker.Grpc.Messages.TypedData { String = "{not json" },
                    });
                    request.TriggerMetadata["DequeueCount"] = new Microsoft.Azure.Functions.Worker.Grpc.Messages.TypedData { Json = "1" };
                }, CancellationToken.None);
                Assert.Equal(Microsoft.Azure.Functions.Worker.Grpc.Messages.StatusResult.Types.Status.Success, answer.Result.Status);

                // Parked in the poison queue of the queue its trigger reads, under the name the runtime knows it by: the
                // handler's queue and the [Function] name agree with the binding the host reads.
                var poison = BackupRelay.Storage.StorageAccount.FromConnectionString(azurite.ConnectionString)
                    .GetQueue(BackupRelay.Configuration.QueueNames.Poison(function.Property("queueName")!));
                var parked = Assert.Single((await poison.ReceiveMessagesAsync(32)).Value);
                Assert.Equal(function.Name, JsonNode.Parse(parked.Body.ToString())!["function"]!.GetValue<string>());
            }
        }
    }

    private async Task RunAsync(string file, string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        output.WriteLine(await stdout);
        Assert.True(process.ExitCode == 0, $"{file} failed: {await stderr}");
    }
}
