using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The destination as infra grants it: the app may read and write blobs but not create containers
/// (an account SAS for objects only stands in for the write-only role). The app still starts, answers,
/// copies into a container infra created, and says clearly when the container is really missing.
/// </summary>
public abstract class LeastPrivilegeTests : PipelineHarness
{
    protected abstract bool ContainerExists { get; }

    /// <summary>What the destination identity may do: by default what the write-only role grants.</summary>
    protected virtual AccountSasPermissions Rights => AccountSasPermissions.Read | AccountSasPermissions.Write | AccountSasPermissions.Add | AccountSasPermissions.List;

    protected override async Task<Azurite> StartAzuriteAsync()
    {
        var azurite = await Azurite.NewAccountAsync();
        if (ContainerExists)
        {
            await new BlobContainerClient(azurite.ConnectionString, "ges-backups",
                new BlobClientOptions(StorageClientSettings.BlobVersion)).CreateIfNotExistsAsync();
        }

        return azurite;
    }

    protected override Dictionary<string, string?> ExtraSettings()
    {
        var sas = new AccountSasBuilder(Rights,
                DateTimeOffset.UtcNow.AddHours(2), AccountSasServices.Blobs, AccountSasResourceTypes.Object)
            .ToSasQueryParameters(new StorageSharedKeyCredential(Azurite.AccountName, StorageConnection.DevelopmentAccountKey));
        return new()
        {
            ["Destination"] = $"BlobEndpoint={Azurite.BlobEndpoint};SharedAccessSignature={sas}",
            ["Http:HealthCacheDuration"] = "00:00:00",
        };
    }
}

public sealed class LeastPrivilegeWithContainerTests : LeastPrivilegeTests
{
    protected override bool ContainerExists => true;

    [Fact]
    public async Task It_starts_without_creating_the_container_and_copies_a_backup()
    {
        using (var health = await Api.GetAsync("/api/health"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal("ok", JsonNode.Parse(await health.Content.ReadAsStringAsync())!["destination"]!.GetValue<string>());
        }

        await TickAsync();
        var runs = await WaitForRunsAsync(2);
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphA), "orders");
        await AssertCopiedAsync(runs.Single(r => r.GraphId == GraphB), "social");
    }
}

public sealed class LeastPrivilegeWithoutContainerTests : LeastPrivilegeTests
{
    protected override bool ContainerExists => false;

    [Fact]
    public async Task A_missing_container_it_may_not_create_is_reported_and_the_rest_still_answers()
    {
        using var health = await Api.GetAsync("/api/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        var destination = JsonNode.Parse(await health.Content.ReadAsStringAsync())!["destination"]!.GetValue<string>();
        Assert.Contains("Destination: container ges-backups does not exist and this identity may not create it", destination, StringComparison.Ordinal);
        Assert.DoesNotContain("sig=", destination, StringComparison.Ordinal);

        using var runs = new HttpRequestMessage(HttpMethod.Get, "/api/runs");
        runs.Headers.Add("x-functions-key", FunctionKey);
        using var list = await Api.SendAsync(runs);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
    }
}

/// <summary>A role that may read but not write: start-up goes on, health and the logs name the missing right.</summary>
public sealed class LeastPrivilegeReadOnlyTests : LeastPrivilegeTests
{
    protected override bool ContainerExists => true;

    protected override AccountSasPermissions Rights => AccountSasPermissions.Read | AccountSasPermissions.List;

    [Fact]
    public async Task A_destination_it_may_not_write_is_reported_on_health_and_in_the_logs()
    {
        using var health = await Api.GetAsync("/api/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        var destination = JsonNode.Parse(await health.Content.ReadAsStringAsync())!["destination"]!.GetValue<string>();
        Assert.Contains("Destination: this identity may not write into container ges-backups", destination, StringComparison.Ordinal);
        Assert.DoesNotContain("sig=", destination, StringComparison.Ordinal);
        Assert.Contains(Logs.Collector.GetSnapshot(), r => r.Level == Microsoft.Extensions.Logging.LogLevel.Error
            && r.Message.Contains("The destination cannot be used: Destination: this identity may not write", StringComparison.Ordinal));

        using var runs = new HttpRequestMessage(HttpMethod.Get, "/api/runs");
        runs.Headers.Add("x-functions-key", FunctionKey);
        using var list = await Api.SendAsync(runs);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
    }
}
