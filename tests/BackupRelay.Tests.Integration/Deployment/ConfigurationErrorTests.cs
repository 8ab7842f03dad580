using System.Diagnostics;
using BackupRelay.Configuration;
using BackupRelay.LocalHost;
using BackupRelay.Tests.Integration.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Integration.Deployment;

/// <summary>
/// Bad settings given to the published worker, started by the local host as the runtime starts it: it ends within seconds with exit code 3, one line per
/// problem naming the setting as a user writes it and what is expected, no stack trace, no secret.
/// </summary>
public sealed class ConfigurationErrorTests
{
    private const string Secret = "c2VjcmV0LWtleS1ub3QtdG8tYmUtc2hvd24tMDEyMzQ1Njc4OQ==";

    /// <summary>Enough for the app to start but for the settings under test.</summary>
    private static Dictionary<string, string> Valid() => new()
    {
        ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true",
        ["Destination"] = "UseDevelopmentStorage=true",
        ["HuaweiCloud__Region"] = "cn-north-4",
        ["HuaweiCloud__ProjectId"] = "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
        ["HuaweiCloud__Auth__AccessKey"] = "AKEXAMPLE",
        ["HuaweiCloud__Auth__SecretKey"] = Secret,
    };

    /// <summary>Starts the published worker on the local host, as the runtime would; it must stop with its report.</summary>
    private static async Task<(int ExitCode, string Error, TimeSpan Elapsed)> RunAsync(Dictionary<string, string> settings)
    {
        var watch = Stopwatch.StartNew();
        var failure = await Assert.ThrowsAsync<WorkerStartException>(async () =>
        {
            await using var host = await LocalFunctionsHost.StartAsync(
                new LocalHostOptions { AppDirectory = WorkerApp.Directory, HttpPort = 0, Settings = new(settings, StringComparer.OrdinalIgnoreCase) },
                NullLoggerFactory.Instance);
        });
        var all = failure.Output + failure.Message;
        Assert.DoesNotContain(Secret, all, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", all, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", all, StringComparison.Ordinal);
        return (failure.ExitCode ?? -1, failure.Output, watch.Elapsed);
    }

    [Fact]
    public async Task Every_problem_is_named_at_once_as_the_setting_is_written()
    {
        var settings = Valid();
        settings["Copy__MaxConcurrency"] = "100";
        settings["Backup__JobDeadline"] = "six-hours";
        settings["Backup__Graphs__0__GraphId"] = "../etc";
        settings["Destination__Container"] = "Not_Valid";
        settings.Remove("HuaweiCloud__Region");

        var (exit, error, elapsed) = await RunAsync(settings);
        Assert.Equal(ConfigurationCheck.ExitCode, exit);
        Assert.Contains("Copy__MaxConcurrency must be between 1 and 64", error, StringComparison.Ordinal);
        Assert.Contains("Backup__JobDeadline is 'six-hours', which is not a time span as [d.]hh:mm[:ss]", error, StringComparison.Ordinal);
        Assert.Contains("Backup__Graphs__0__GraphId must be a GES graph id", error, StringComparison.Ordinal);
        Assert.Contains("Destination__Container must be 3-63 lower-case letters", error, StringComparison.Ordinal);
        Assert.Contains("HuaweiCloud__Region is required", error, StringComparison.Ordinal);
        Assert.Contains("(5 problems; exit code 3.", error, StringComparison.Ordinal);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"took {elapsed}");
    }

    [Theory]
    [InlineData("AzureWebJobsStorage", null, "AzureWebJobsStorage is not set")]
    [InlineData("AzureWebJobsStorage", "AccountName=a;AccountKey=" + Secret + ";QueueEndpoint=ftp//x", "AzureWebJobsStorage is not a valid storage connection string")]
    [InlineData("Destination__accountName", "", "Destination is not set")]
    [InlineData("HuaweiCloud__Resilience__RequestsPerSecond", "fast", "HuaweiCloud__Resilience__RequestsPerSecond is 'fast', which is not a number")]
    [InlineData("Copy__Mode", "Sideways", "Copy__Mode is 'Sideways', which is not one of Streaming, ServerSide")]
    [InlineData("Obs__PartSizeBytes", "1000", "Obs__PartSizeBytes must be between 102400")]
    [InlineData("Obs__AccessKeyId", "AKONLY", "Obs__AccessKeyId and Obs__SecretAccessKey must be set together")]
    [InlineData("Backup__Shedule", "0 0 2 * * *", "Backup__Shedule is not a setting: did you mean Backup__Schedule?")]
    [InlineData("Copy__MaxConcurency", "4", "Copy__MaxConcurency is not a setting: did you mean Copy__MaxConcurrency?")]
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
