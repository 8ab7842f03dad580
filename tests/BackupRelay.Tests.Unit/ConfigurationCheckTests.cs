using BackupRelay.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Unit;

/// <summary>Settings the binder would ignore in silence (a misspelt name) stop start-up, naming the closest real one.</summary>
public sealed class ConfigurationCheckTests
{
    private static IReadOnlyList<string> Problems(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true",
            ["Destination"] = "UseDevelopmentStorage=true",
            ["HuaweiCloud:Region"] = "cn-north-4",
            ["HuaweiCloud:ProjectId"] = "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
            ["HuaweiCloud:Auth:AccessKey"] = "AKEXAMPLE",
            ["HuaweiCloud:Auth:SecretKey"] = "secret",
            ["Backup:Graphs:0:GraphId"] = "a1b2c3d4-0000-4000-8000-00000000000a",
        };
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddLogging().AddBackupRelay(configuration).BuildServiceProvider();
        return ConfigurationCheck.Problems(services, configuration);
    }

    [Fact]
    public void Valid_settings_have_no_problem() => Assert.Empty(Problems());

    [Fact]
    public void A_wrong_typed_number_names_its_valid_range() =>
        Assert.Contains("Copy__MaxConcurrency is 'abc', which is not a whole number between 1 and 64.", Problems(("Copy:MaxConcurrency", "abc")));

    [Theory]
    [InlineData("Backup:Shedule", "Backup__Shedule is not a setting: did you mean Backup__Schedule?")]
    [InlineData("Copy:MaxConcurency", "Copy__MaxConcurency is not a setting: did you mean Copy__MaxConcurrency?")]
    [InlineData("HuaweiCloud:Auth:AcessKey", "HuaweiCloud__Auth__AcessKey is not a setting: did you mean HuaweiCloud__Auth__AccessKey?")]
    [InlineData("Backup:Graphs:0:GrapId", "Backup__Graphs__0__GrapId is not a setting: did you mean Backup__Graphs__0__GraphId?")]
    [InlineData("Http:FunctionKeys:0", "Http__FunctionKeys is not a setting: the settings under Http__ are")]
    public void A_misspelt_or_retired_setting_is_named_with_the_closest_real_one(string key, string expected)
    {
        var problem = Assert.Single(Problems((key, "1")));
        Assert.StartsWith(expected, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_connections_identity_settings_are_settings_of_the_destination() =>
        Assert.DoesNotContain(Problems(("Destination:clientId", "00000000-0000-0000-0000-000000000001")), p => p.Contains("is not a setting", StringComparison.Ordinal));

    [Theory]
    [InlineData("Schedule", "Shedule", 1)]
    [InlineData("MaxConcurrency", "MaxConcurency", 1)]
    [InlineData("Schedule", "Schedlue", 1)]
    [InlineData("abc", "xyz", 3)]
    public void Distance_counts_edits_with_swaps_as_one(string a, string b, int expected) => Assert.Equal(expected, ConfigurationCheck.Distance(a, b));

    [Theory]
    [InlineData("Http:WebhookSecret", "Http__WebhookSecret")]
    [InlineData("HuaweiCloud:Auth:SecretKey", "HuaweiCloud__Auth__SecretKey")]
    public void A_key_vault_reference_left_unresolved_is_a_configuration_error(string key, string named)
    {
        var problems = Problems((key, "@Microsoft.KeyVault(SecretUri=https://relay-kv.vault.azure.net/secrets/webhook-secret/)"));
        Assert.Contains(problems, p => p.StartsWith(named + " is a Key Vault reference that was not resolved", StringComparison.Ordinal));
    }
}
