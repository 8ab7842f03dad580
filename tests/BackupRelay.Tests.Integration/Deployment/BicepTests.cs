using System.Diagnostics;
using System.Reflection;
using System.Text.Json.Nodes;

namespace BackupRelay.Tests.Integration.Deployment;

/// <summary>
/// infra/ is compiled, not hoped: the Bicep CLI (restored from NuGet with the test project) builds
/// main.bicep and main.bicepparam and lints them, for both hosting plans; any error or warning fails.
/// </summary>
public sealed class BicepTests
{
    private static readonly string Infra = Path.Combine(Azurite.RepositoryRoot(), "infra");

    private static string Bicep()
    {
        var path = typeof(BicepTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "BicepPath").Value!;
        Assert.True(File.Exists(path), $"the Bicep CLI is not restored at {path}");
        // The package is linux-x64 only; NuGet may extract it without the execute bit.
        if (OperatingSystem.IsLinux() && !File.GetUnixFileMode(path).HasFlag(UnixFileMode.UserExecute))
        {
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute);
        }

        return path;
    }

    private static async Task<(int Exit, string Output, string Errors)> RunAsync(params string[] arguments)
    {
        var info = new ProcessStartInfo(Bicep()) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Infra };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // No network here: never look for a newer CLI.
        info.Environment["BICEP_TRACING_ENABLED"] = "false";
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(limit.Token);
        return (process.ExitCode, await output, await errors);
    }

    [Fact]
    public async Task Main_bicep_builds_and_lints_without_a_warning()
    {
        var (exit, output, errors) = await RunAsync("build", "main.bicep", "--stdout");
        Assert.True(exit == 0 && errors.Trim().Length == 0, errors);
        var template = JsonNode.Parse(output)!;
        Assert.Equal("FlexConsumption", template["parameters"]!["hostingPlan"]!["defaultValue"]!.GetValue<string>());

        (exit, _, errors) = await RunAsync("lint", "main.bicep");
        Assert.True(exit == 0 && errors.Trim().Length == 0, errors);
    }

    [Theory]
    [InlineData("FlexConsumption")]
    [InlineData("ElasticPremium")]
    public async Task The_parameters_build_for_each_hosting_plan(string plan)
    {
        // main.bicepparam as shipped, with the plan chosen.
        var shipped = await File.ReadAllTextAsync(Path.Combine(Infra, "main.bicepparam"));
        var file = Path.Combine(Infra, $"test-{plan}-{Guid.NewGuid():N}.bicepparam");
        Assert.Matches("(?m)^param hostingPlan = ", shipped);
        await File.WriteAllTextAsync(file, System.Text.RegularExpressions.Regex.Replace(shipped, "(?m)^param hostingPlan = .*$", $"param hostingPlan = '{plan}'"));
        try
        {
            var (exit, output, errors) = await RunAsync("build-params", Path.GetFileName(file), "--stdout");
            Assert.True(exit == 0 && errors.Trim().Length == 0, errors);
            var parameters = JsonNode.Parse(JsonNode.Parse(output)!["parametersJson"]!.GetValue<string>())!["parameters"]!;
            Assert.Equal(plan, parameters["hostingPlan"]!["value"]!.GetValue<string>());

            (exit, _, errors) = await RunAsync("lint", Path.GetFileName(file));
            Assert.True(exit == 0 && errors.Trim().Length == 0, errors);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task The_shipped_parameters_build()
    {
        var (exit, _, errors) = await RunAsync("build-params", "main.bicepparam", "--stdout");
        Assert.True(exit == 0 && errors.Trim().Length == 0, errors);
    }
}
