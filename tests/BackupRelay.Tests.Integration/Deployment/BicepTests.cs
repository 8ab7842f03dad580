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

    [Fact]
    public async Task The_template_deploys_what_can_work_and_nothing_it_does_not_need()
    {
        var (exit, output, errors) = await RunAsync("build", "main.bicep", "--stdout");
        Assert.True(exit == 0, errors);
        var resources = JsonNode.Parse(output)!["resources"]!.AsArray().Select(r => r!).ToList();

        // Archive tier needs a redundancy that has it (ZRS does not).
        var destination = resources.Single(r => r["type"]!.GetValue<string>() == "Microsoft.Storage/storageAccounts"
            && r["name"]!.ToJsonString().Contains("destinationStorageName", StringComparison.Ordinal));
        Assert.Equal("[if(greater(parameters('archiveAfterDays'), 0), 'Standard_GRS', 'Standard_ZRS')]", destination["sku"]!["name"]!.GetValue<string>());

        // No basic-auth publishing; no Table role (the app uses no tables); the app starts after its roles exist.
        var policies = resources.Where(r => r["type"]!.GetValue<string>() == "Microsoft.Web/sites/basicPublishingCredentialsPolicies").ToList();
        Assert.Equal(2, policies.Count);
        Assert.All(policies, p => Assert.False(p["properties"]!["allow"]!.GetValue<bool>()));
        Assert.DoesNotContain("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", output, StringComparison.Ordinal);
        var app = resources.Single(r => r["type"]!.GetValue<string>() == "Microsoft.Web/sites");
        Assert.Equal(5, app["dependsOn"]!.AsArray().Count(d => d!.GetValue<string>().Contains("roleAssignments", StringComparison.Ordinal)));
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
