using BackupRelay.HuaweiCloud;

namespace BackupRelay.Tests.Unit.HuaweiCloud;

public sealed class OptionsValidationTests
{
    private static HuaweiCloudOptions Valid() => new()
    {
        Region = "cn-north-4",
        ProjectId = "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
        Auth = new() { UserName = "u", Password = "p", DomainName = "d" },
    };

    private static IEnumerable<string> Failures(HuaweiCloudOptions options) =>
        new HuaweiCloudOptionsValidator().Validate(null, options).Failures ?? [];

    [Fact]
    public void Valid_settings_pass() => Assert.Empty(Failures(Valid()));

    [Fact]
    public void Each_failure_names_its_setting()
    {
        var options = Valid();
        options.Region = "Nowhere";
        options.ProjectId = "bad-id";
        options.Auth.Password = null;
        options.Resilience.AttemptTimeout = TimeSpan.Zero;
        options.Endpoints.Ges = new Uri("ftp://x/");
        var failures = string.Join("\n", Failures(options));
        Assert.Contains("HuaweiCloud__Region", failures, StringComparison.Ordinal);
        Assert.Contains("HuaweiCloud__ProjectId", failures, StringComparison.Ordinal);
        Assert.Contains("HuaweiCloud__Auth__Password", failures, StringComparison.Ordinal);
        Assert.Contains("HuaweiCloud__Resilience__AttemptTimeout", failures, StringComparison.Ordinal);
        Assert.Contains("HuaweiCloud__Endpoints__Ges", failures, StringComparison.Ordinal);
    }

    [Fact]
    public void Access_key_switches_to_ak_sk_and_needs_the_secret()
    {
        var options = Valid();
        options.Auth = new() { AccessKey = "AK" };
        Assert.Equal(HuaweiCloudAuthMode.AkSk, options.Auth.EffectiveMode);
        Assert.Contains(Failures(options), f => f.Contains("HuaweiCloud__Auth__SecretKey", StringComparison.Ordinal));
    }
}
