using BackupRelay.Storage;
using Microsoft.Extensions.Configuration;

namespace BackupRelay.Tests.Unit.Storage;

public sealed class StorageConnectionTests
{
    private static IConfiguration Settings(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.ToDictionary(v => v.Key, v => (string?)v.Value)).Build();

    [Fact]
    public void Development_storage_is_azurite_on_its_default_ports()
    {
        var account = StorageAccount.FromConnectionString("UseDevelopmentStorage=true");
        Assert.Equal(new Uri("http://127.0.0.1:10000/devstoreaccount1"), account.Blobs.Uri);
        Assert.Equal(new Uri("http://127.0.0.1:10001/devstoreaccount1"), account.Queues.Uri);
        Assert.Equal("devstoreaccount1", account.Blobs.AccountName);
    }

    [Fact]
    public void Account_key_connection_string_derives_endpoints()
    {
        var account = new StorageAccount(StorageConnection.FromConfiguration(
            Settings(("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=AAAA;EndpointSuffix=core.chinacloudapi.cn")), "AzureWebJobsStorage"));
        Assert.Equal(new Uri("https://acct.blob.core.chinacloudapi.cn/"), account.Blobs.Uri);
        Assert.Equal(new Uri("https://acct.queue.core.chinacloudapi.cn/"), account.Queues.Uri);
    }

    [Fact]
    public void A_blob_only_connection_names_the_setting_when_a_queue_is_asked_for()
    {
        var account = new StorageAccount(StorageConnection.FromConfiguration(
            Settings(("Destination", "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=1&sig=x")), "Destination"));
        Assert.Equal("acct", account.Blobs.AccountName);
        var error = Assert.Throws<StorageConfigurationException>(() => account.Queues);
        Assert.StartsWith("Destination has no queue endpoint", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Identity_based_settings_use_a_token_credential()
    {
        var c = StorageConnection.FromConfiguration(Settings(
            ("AzureWebJobsStorage:accountName", "acct"),
            ("AzureWebJobsStorage:credential", "managedidentity"),
            ("AzureWebJobsStorage:clientId", "00000000-0000-0000-0000-000000000001")), "AzureWebJobsStorage");
        Assert.IsType<Azure.Identity.ManagedIdentityCredential>(c.Credential);
        Assert.Equal(new Uri("https://acct.blob.core.windows.net/"), c.BlobServiceUri);
        Assert.Equal(new Uri("https://acct.queue.core.windows.net/"), c.QueueServiceUri);
        var account = new StorageAccount(c);
        Assert.Equal("acct", account.Blobs.AccountName);
        Assert.Equal("acct", account.Queues.AccountName);
    }

    [Fact]
    public void Identity_settings_can_give_service_uris_and_default_to_the_default_credential()
    {
        var c = StorageConnection.FromConfiguration(Settings(("Destination:blobServiceUri", "https://dest.blob.core.windows.net")), "Destination");
        Assert.IsType<Azure.Identity.DefaultAzureCredential>(c.Credential);
        Assert.Equal("dest", new StorageAccount(c).Blobs.AccountName);
        var error = Assert.Throws<StorageConfigurationException>(() => new StorageAccount(c).Queues);
        Assert.Equal("Destination__queueServiceUri", error.Setting);
    }

    [Theory]
    [InlineData("Destination:blobServiceUri", "ftp://x", "Destination__blobServiceUri")]
    [InlineData("Destination:credential", "certificate", "Destination__credential")]
    [InlineData("Destination:clientId", "only-a-client-id", "Destination__accountName")]
    public void Bad_identity_settings_name_the_setting(string key, string value, string setting)
    {
        var error = Assert.Throws<StorageConfigurationException>(() => StorageConnection.FromConfiguration(Settings((key, value)), "Destination"));
        Assert.Equal(setting, error.Setting);
        Assert.StartsWith(setting, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nonsense")]
    [InlineData("AccountName=a")]
    [InlineData("AccountName=a;AccountKey=***")]
    [InlineData("BlobEndpoint=ftp//x;AccountKey=AAAA")]
    public void Bad_connection_strings_name_the_setting(string value)
    {
        var error = Assert.Throws<StorageConfigurationException>(() => StorageConnection.FromConfiguration(Settings(("AzureWebJobsStorage", value)), "AzureWebJobsStorage"));
        Assert.StartsWith("AzureWebJobsStorage", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_connection_names_the_setting()
    {
        var error = Assert.Throws<StorageConfigurationException>(() => StorageConnection.FromConfiguration(new ConfigurationBuilder().Build(), "Destination"));
        Assert.StartsWith("Destination is not set", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("AccountKey=c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5;BlobEndpoint=ftp//bad;QueueEndpoint=ftp//bad", "c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5")]
    [InlineData("BlobEndpoint=nope;QueueEndpoint=nope;SharedAccessSignature=sv=1&sig=c2lnbmF0dXJlLXNlY3JldA", "c2lnbmF0dXJlLXNlY3JldA")]
    [InlineData("DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5", "c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5")]
    public void Secrets_in_a_bad_connection_string_never_reach_the_error(string value, string secret)
    {
        // The error is thrown, names the setting, and carries no part of the key or signature (inner exceptions included).
        var error = Assert.Throws<StorageConfigurationException>(() =>
            new StorageAccount(StorageConnection.FromConfiguration(Settings(("AzureWebJobsStorage", value)), "AzureWebJobsStorage")).Blobs);
        Assert.Equal("AzureWebJobsStorage", error.Setting);
        Assert.DoesNotContain(secret, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, error.Message, StringComparison.Ordinal);
        Assert.Null(error.InnerException);
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
