using System.Diagnostics;
using BackupRelay.Configuration;

namespace BackupRelay.Tests.Integration.Deployment;

/// <summary>
/// Bad settings given to the real executable: it ends within seconds with exit code 3, one line per
/// problem naming the setting as a user writes it and what is expected, no stack trace, no secret.
/// </summary>
public sealed class ConfigurationErrorTests
{
    private const string Secret = "c2VjcmV0LWtleS1ub3QtdG8tYmUtc2hvd24tMDEyMzQ1Njc4OQ==";

    /// <summary>Enough for the standalone host to start but for the settings under test.</summary>
    private static Dictionary<string, string> Valid() => new()
    {
        ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true",
        ["Destination"] = "UseDevelopmentStorage=true",
        ["HuaweiCloud__Region"] = "cn-north-4",
        ["HuaweiCloud__ProjectId"] = "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
        ["HuaweiCloud__Auth__AccessKey"] = "AKEXAMPLE",
        ["HuaweiCloud__Auth__SecretKey"] = Secret,
        ["Http__AllowAnonymousLocalDevelopment"] = "true",
    };

    private static async Task<(int ExitCode, string Error, TimeSpan Elapsed)> RunAsync(Dictionary<string, string> settings)
    {
        var configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        var host = Path.Combine(Azurite.RepositoryRoot(), "src", "BackupRelay.Host", "bin", configuration, "net10.0", "BackupRelay.Host.dll");
        Assert.True(File.Exists(host), $"{host} is not built");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(host);
        info.Environment.Clear();
        info.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH");
        info.Environment["HOME"] = Environment.GetEnvironmentVariable("HOME") ?? "/tmp";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["ASPNETCORE_URLS"] = "http://127.0.0.1:0";
        foreach (var (key, value) in settings)
        {
            info.Environment[key] = value;
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the host did not stop on a bad configuration: " + await stdout);
        }

        var all = await stderr + await stdout;
        Assert.DoesNotContain(Secret, all, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", all, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", all, StringComparison.Ordinal);
        return (process.ExitCode, await stderr, watch.Elapsed);
    }

    [Fact]
    public async Task Every_problem_is_named_at_once_as_the_setting_is_written()
    {
        var settings = Valid();
        settings["Copy__MaxConcurrency"] = "100";
        settings["Backup__JobDeadline"] = "six-hours";
        settings["Backup__Graphs__0__GraphId"] = "../etc";
        settings["Destination__Container"] = "Not_Valid";
        settings["Standalone__HostJsonPath"] = "/nowhere/host.json";
        settings.Remove("HuaweiCloud__Region");

        var (exit, error, elapsed) = await RunAsync(settings);
        Assert.Equal(ConfigurationCheck.ExitCode, exit);
        Assert.Contains("Copy__MaxConcurrency must be between 1 and 64", error, StringComparison.Ordinal);
        Assert.Contains("Backup__JobDeadline is 'six-hours', which is not a time span as [d.]hh:mm[:ss]", error, StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__0__GraphId must be a GES graph id", error, StringComparison.Ordinal);
        Assert.Contains("Destination__Container must be 3-63 lower-case letters", error, StringComparison.Ordinal);
        Assert.Contains("Standalone__HostJsonPath names '/nowhere/host.json', which does not exist", error, StringComparison.Ordinal);
        Assert.Contains("HuaweiCloud__Region is required", error, StringComparison.Ordinal);
        Assert.Contains("(6 problems; exit code 3.", error, StringComparison.Ordinal);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed}");
    }

    [Theory]
    [InlineData("AzureWebJobsStorage", null, "AzureWebJobsStorage is not set")]
    [InlineData("AzureWebJobsStorage", "AccountName=a;AccountKey=" + Secret + ";QueueEndpoint=ftp//x", "AzureWebJobsStorage is not a valid storage connection string")]
    [InlineData("Destination__accountName", "", "Destination is not set")]
    [InlineData("HuaweiCloud__Resilience__RequestsPerSecond", "fast", "HuaweiCloud__Resilience__RequestsPerSecond is 'fast', which is not a number")]
    [InlineData("Copy__Mode", "Sideways", "Copy__Mode is 'Sideways', which is not one of Streaming, ServerSide")]
    [InlineData("Http__AllowAnonymousLocalDevelopment", "false", "Http__FunctionKeys__0 must be set")]
    [InlineData("Obs__PartSizeBytes", "1000", "Obs__PartSizeBytes must be between 102400")]
    [InlineData("Obs__AccessKeyId", "AKONLY", "Obs__AccessKeyId and Obs__SecretAccessKey must be set together")]
    public async Task Each_class_of_error_names_its_setting(string setting, string? value, string expected)
    {
        var settings = Valid();
        if (setting == "Destination__accountName")
        {
            settings.Remove("Destination");
            settings["Destination__Container"] = "ges-backups";
        }
        else if (value is null)
        {
            settings.Remove(setting);
        }
        else
        {
            settings[setting] = value;
        }

        var (exit, error, _) = await RunAsync(settings);
        Assert.Equal(ConfigurationCheck.ExitCode, exit);
        Assert.Contains("BackupRelay cannot start: " + expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unreachable_storage_names_the_setting_and_the_endpoint_within_ten_seconds()
    {
        var settings = Valid();
        settings["AzureWebJobsStorage"] = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + Secret +
            ";BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1";
        var (exit, error, elapsed) = await RunAsync(settings);
        Assert.Equal(ConfigurationCheck.ExitCode, exit);
        Assert.Contains("AzureWebJobsStorage: the queue service at http://127.0.0.1:9/devstoreaccount1 could not be reached", error, StringComparison.Ordinal);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed}");
    }
}
