using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using BackupRelay.HuaweiCloud.Emulator;
using Xunit.Abstractions;

namespace BackupRelay.Tests.Integration.Deployment;

/// <summary>Builds the deployment package with build/package.sh, unpacks it and runs it as the Functions host would.</summary>
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
    public async Task The_package_runs_as_a_custom_handler_and_serves_every_function()
    {
        var zip = Path.Combine(_work, "app.zip");
        await RunAsync("bash", [Path.Combine(Azurite.RepositoryRoot(), "build", "package.sh"), zip]);
        var app = Path.Combine(_work, "app");
        ZipFile.ExtractToDirectory(zip, app);

        // host.json's executable exists and is executable (the mode travelled in the zip).
        var host = JsonNode.Parse(File.ReadAllText(Path.Combine(app, "host.json")))!;
        var exe = Path.Combine(app, host["customHandler"]!["description"]!["defaultExecutablePath"]!.GetValue<string>());
        Assert.True(File.Exists(exe), exe);
        using (var archive = ZipFile.OpenRead(zip))
        {
            var mode = (archive.GetEntry("handler/BackupRelay.Host")!.ExternalAttributes >> 16) & 0x1FF;
            Assert.Equal(0x1ED, mode); // 0755
        }

        if (!OperatingSystem.IsWindows())
        {
            Assert.True((File.GetUnixFileMode(exe) & UnixFileMode.UserExecute) != 0, "extracted without its execute bit");
        }
        Assert.True(host["customHandler"]!["enableForwardingHttpRequest"]!.GetValue<bool>());

        await using var emulator = await HuaweiCloudEmulator.StartAsync(DemoSeed.Create());
        var azurite = await Azurite.InstanceAsync();
        var port = FreePort();
        var start = new ProcessStartInfo(exe) { WorkingDirectory = app, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in new Dictionary<string, string>
                 {
                     ["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     ["FUNCTIONS_APP_ROOT_PATH"] = app,
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
                 })
        {
            start.Environment[key] = value;
        }

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        try
        {
            // The host polls GET / every 25 ms until anything answers; it gives 30 s.
            while (true)
            {
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), "the handler did not answer within 30 s");
                Assert.False(process.HasExited, "the handler exited: " + (process.HasExited ? await errors : ""));
                try
                {
                    using var ready = await http.GetAsync("/");
                    break;
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(25);
                }
            }

            watch.Stop();
            output.WriteLine($"start-up (process start to first answer on GET /): {watch.ElapsedMilliseconds} ms");
            await File.AppendAllTextAsync(Path.Combine(Path.GetTempPath(), "backuprelay-startup-ms.txt"), $"{watch.ElapsedMilliseconds}\n");

            // Every function folder maps to a route of the handler.
            foreach (var folder in Directory.GetDirectories(app).Where(d => File.Exists(Path.Combine(d, "function.json"))))
            {
                var name = Path.GetFileName(folder);
                var binding = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "function.json")))!["bindings"]![0]!;
                var type = binding["type"]!.GetValue<string>();
                HttpResponseMessage response;
                if (type == "httpTrigger")
                {
                    // Forwarded as is: the route with invalid ids must reach our validation (400), not a missing route.
                    var route = "/api/" + System.Text.RegularExpressions.Regex.Replace(binding["route"]!.GetValue<string>(), @"\{[^}]+\}", "bad!id");
                    var method = new HttpMethod(binding["methods"]![0]!.GetValue<string>().ToUpperInvariant());
                    response = await http.SendAsync(new HttpRequestMessage(method, route) { Content = method == HttpMethod.Get ? null : new StringContent("{}", Encoding.UTF8, "application/json") });
                    Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable,
                        $"{name} {route}: {(int)response.StatusCode}");
                }
                else
                {
                    var payload = type == "timerTrigger"
                        ? """{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}"""
                        : """{"Data":{"message":"\"{not json\""},"Metadata":{"DequeueCount":"1"}}""";
                    response = await http.PostAsync("/" + name, new StringContent(payload, Encoding.UTF8, "application/json"));
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["Logs"]);
                }

                response.Dispose();
            }

            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"start-up took {watch.ElapsedMilliseconds} ms");
        }
        finally
        {
            process.Kill(entireProcessTree: true);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
