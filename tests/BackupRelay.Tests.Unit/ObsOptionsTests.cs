using BackupRelay.HuaweiCloud;
using BackupRelay.Restores;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace BackupRelay.Tests.Unit;

public sealed class ObsOptionsTests
{
    private static ObsOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new ObsOptions();
        configuration.GetSection(ObsOptions.SectionName).Bind(options);
        var huawei = new HuaweiCloudOptions();
        configuration.GetSection(HuaweiCloudOptions.SectionName).Bind(huawei);
        new ObsOptionsDefaults(Options.Create(huawei)).PostConfigure(null, options);
        return options;
    }

    [Fact]
    public void Unset_endpoint_region_and_credentials_come_from_the_huawei_cloud_settings()
    {
        var options = Bind(new()
        {
            ["HuaweiCloud:Region"] = "ap-southeast-1",
            ["HuaweiCloud:Auth:AccessKey"] = "AK1",
            ["HuaweiCloud:Auth:SecretKey"] = "SK1",
            ["Obs:Endpoint"] = "", // present but empty, as infra writes it
        });
        Assert.Equal(new Uri("https://obs.ap-southeast-1.myhuaweicloud.com"), options.Endpoint);
        Assert.Equal("ap-southeast-1", options.Region);
        Assert.Equal(("AK1", "SK1"), (options.AccessKeyId, options.SecretAccessKey));
        Assert.True(options.IsConfigured);
        Assert.True(new ObsOptionsValidator().Validate(null, options).Succeeded);
    }

    [Fact]
    public void Own_credentials_win_and_password_auth_alone_leaves_restores_unconfigured()
    {
        var own = Bind(new() { ["HuaweiCloud:Region"] = "cn-north-4", ["HuaweiCloud:Auth:AccessKey"] = "AK1", ["HuaweiCloud:Auth:SecretKey"] = "SK1",
            ["Obs:AccessKeyId"] = "AK2", ["Obs:SecretAccessKey"] = "SK2" });
        Assert.Equal(("AK2", "SK2"), (own.AccessKeyId, own.SecretAccessKey));
        var password = Bind(new() { ["HuaweiCloud:Region"] = "cn-north-4", ["HuaweiCloud:Auth:UserName"] = "u", ["HuaweiCloud:Auth:Password"] = "p" });
        Assert.False(password.IsConfigured);
    }

    [Theory]
    [InlineData("Obs:Bucket", "Bad_Bucket", "Obs__Bucket")]
    [InlineData("Obs:Prefix", "/leading", "Obs__Prefix")]
    [InlineData("Obs:Prefix", "no-slash", "Obs__Prefix")]
    [InlineData("Obs:Endpoint", "ftp://obs.example", "Obs__Endpoint")]
    [InlineData("Obs:MaxConcurrency", "0", "Obs__MaxConcurrency")]
    [InlineData("Obs:SecretAccessKey", "SK-alone", "Obs__AccessKeyId and Obs__SecretAccessKey")]
    public void A_bad_setting_is_named(string key, string value, string named)
    {
        var options = Bind(new() { ["HuaweiCloud:Region"] = "cn-north-4", [key] = value });
        var result = new ObsOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(named, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0L, 16 * 1024 * 1024)]
    [InlineData(100L * 1024 * 1024 * 1024, 16 * 1024 * 1024)]
    [InlineData(200L * 1024 * 1024 * 1024, 21 * 1024 * 1024)]
    public void Large_files_get_larger_parts_to_stay_within_ten_thousand(long size, int part)
    {
        var options = new ObsOptions();
        Assert.Equal(part, options.PartSizeFor(size));
        Assert.True((size + part - 1) / part <= ObsOptions.MaxParts);
    }
}
