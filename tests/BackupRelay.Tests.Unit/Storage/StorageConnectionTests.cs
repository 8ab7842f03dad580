using BackupRelay.Storage;
using Microsoft.Extensions.Configuration;

namespace BackupRelay.Tests.Unit.Storage;

public sealed class StorageConnectionTests
{
    [Fact]
    public void Development_storage_is_azurite_on_its_default_ports()
    {
        var c = StorageConnection.Parse("UseDevelopmentStorage=true");
        Assert.Equal("devstoreaccount1", c.AccountName);
        Assert.Equal(new Uri("http://127.0.0.1:10000/devstoreaccount1/"), c.BlobEndpoint);
        Assert.Equal(new Uri("http://127.0.0.1:10001/devstoreaccount1/"), c.QueueEndpoint);
        Assert.Equal(StorageAuthKind.SharedKey, c.Auth);
    }

    [Fact]
    public void Account_key_connection_string_derives_endpoints()
    {
        var c = StorageConnection.Parse("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=AAAA;EndpointSuffix=core.chinacloudapi.cn");
        Assert.Equal(new Uri("https://acct.blob.core.chinacloudapi.cn/"), c.BlobEndpoint);
        Assert.Equal(new Uri("https://acct.queue.core.chinacloudapi.cn/"), c.QueueEndpoint);
        Assert.Equal(StorageAuthKind.SharedKey, c.Auth);
    }

    [Fact]
    public void Explicit_endpoints_with_sas()
    {
        var c = StorageConnection.Parse("BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=?sv=1&sig=x");
        Assert.Equal("acct", c.AccountName);
        Assert.Equal(StorageAuthKind.SharedAccessSignature, c.Auth);
        Assert.Null(c.QueueEndpoint);
        Assert.Throws<StorageConfigurationException>(() => c.RequireQueueEndpoint("Destination"));
    }

    [Fact]
    public void Identity_based_settings_use_a_token_credential()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage:accountName"] = "acct",
            ["AzureWebJobsStorage:credential"] = "managedidentity",
            ["AzureWebJobsStorage:clientId"] = "00000000-0000-0000-0000-000000000001",
        }).Build();
        var c = StorageConnection.FromConfiguration(configuration, "AzureWebJobsStorage");
        Assert.Equal(StorageAuthKind.Token, c.Auth);
        Assert.Equal(new Uri("https://acct.blob.core.windows.net/"), c.BlobEndpoint);
        Assert.Equal(new Uri("https://acct.queue.core.windows.net/"), c.QueueEndpoint);
    }

    [Fact]
    public void Identity_settings_can_give_service_uris()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Destination:blobServiceUri"] = "https://dest.blob.core.windows.net",
        }).Build();
        var c = StorageConnection.FromConfiguration(configuration, "Destination");
        Assert.Equal("dest", c.AccountName);
        Assert.Equal(new Uri("https://dest.blob.core.windows.net/"), c.BlobEndpoint);
    }

    [Theory]
    [InlineData("nonsense", "AzureWebJobsStorage")]
    [InlineData("AccountName=a", "AzureWebJobsStorage")]
    [InlineData("AccountName=a;AccountKey=***", "AzureWebJobsStorage")]
    [InlineData("BlobEndpoint=ftp://x;AccountKey=AAAA", "AzureWebJobsStorage")]
    public void Bad_connection_strings_name_the_setting(string value, string setting)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [setting] = value }).Build();
        var error = Assert.Throws<StorageConfigurationException>(() => StorageConnection.FromConfiguration(configuration, setting));
        Assert.StartsWith(setting, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_connection_names_the_setting()
    {
        var error = Assert.Throws<StorageConfigurationException>(() => StorageConnection.FromConfiguration(new ConfigurationBuilder().Build(), "Destination"));
        Assert.StartsWith("Destination is not set", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Account_key_never_appears_in_errors_or_text()
    {
        const string key = "c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5";
        var c = StorageConnection.Parse($"AccountName=a;AccountKey={key}");
        Assert.DoesNotContain(key, c.ToString() ?? "", StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("backup-start", true)]
    [InlineData("backup-start-poison", true)]
    [InlineData("Backup", false)]
    [InlineData("ab", false)]
    [InlineData("a--b", false)]
    [InlineData("-ab", false)]
    public void Queue_and_container_names_follow_the_rules(string name, bool valid) => Assert.Equal(valid, StorageNames.IsValid(name));
}
