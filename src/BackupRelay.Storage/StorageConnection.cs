using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Microsoft.Extensions.Configuration;

namespace BackupRelay.Storage;

/// <summary>
/// A storage account connection as Azure Functions defines one, so the same app settings serve the
/// Functions host and this app: a connection string in <c>&lt;Name&gt;</c>, or the identity-based
/// group <c>&lt;Name&gt;__accountName</c> / <c>__blobServiceUri</c> / <c>__queueServiceUri</c> /
/// <c>__credential</c> / <c>__clientId</c>. The SDK has no reader for the identity group (the
/// Functions host has its own), so this is the project's: it only turns settings into SDK clients,
/// with errors that name the setting.
/// </summary>
public sealed class StorageConnection
{
    public const string DevelopmentAccountName = "devstoreaccount1";

    /// <summary>The well-known Azurite / storage emulator key (public, not a secret).</summary>
    public const string DevelopmentAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// <summary>The settings of an identity-based connection (<c>&lt;name&gt;__accountName</c>, ...).</summary>
    public static IReadOnlyList<string> IdentityKeys { get; } = ["accountName", "blobServiceUri", "queueServiceUri", "credential", "clientId"];

    private readonly string? _connectionString;

    private StorageConnection(string setting, string? connectionString, Uri? blobServiceUri, Uri? queueServiceUri, TokenCredential? credential)
    {
        Setting = setting;
        _connectionString = connectionString;
        BlobServiceUri = blobServiceUri;
        QueueServiceUri = queueServiceUri;
        Credential = credential;
    }

    /// <summary>The setting the connection was read from, for error messages.</summary>
    public string Setting { get; }

    /// <summary>Identity connections only: the endpoints and the credential.</summary>
    public Uri? BlobServiceUri { get; }

    public Uri? QueueServiceUri { get; }

    public TokenCredential? Credential { get; }

    /// <summary>Reads connection <paramref name="name"/> from configuration in either form; the error names the setting.</summary>
    public static StorageConnection FromConfiguration(IConfiguration configuration, string name)
    {
        var connectionString = configuration[name] ?? configuration.GetConnectionString(name);
        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            return FromConnectionString(connectionString, name);
        }

        // Only the identity keys make an identity connection: Destination__Container and the like are other settings.
        var section = configuration.GetSection(name);
        if (IdentityKeys.Any(key => !string.IsNullOrEmpty(section[key])))
        {
            return FromIdentitySettings(section, name);
        }

        throw new StorageConfigurationException(name,
            "is not set: give a connection string, or identity-based settings such as " + name + "__accountName.");
    }

    /// <summary>A connection string, checked by building both SDK clients from it (the SDK parses it).</summary>
    public static StorageConnection FromConnectionString(string connectionString, string name = "connection string")
    {
        var connection = new StorageConnection(name, connectionString, null, null, null);
        if (!(TryCreate(() => new BlobServiceClient(connectionString), out BlobServiceClient blobs) && blobs.Uri is not null)
            && !(TryCreate(() => new QueueServiceClient(connectionString), out QueueServiceClient queues) && queues.Uri is not null))
        {
            // The SDK's message may quote the connection string; ours names the setting only.
            throw new StorageConfigurationException(name,
                "is not a valid storage connection string: expected UseDevelopmentStorage=true, or AccountName and AccountKey, " +
                "or BlobEndpoint/QueueEndpoint with SharedAccessSignature.");
        }

        return connection;
    }

    public BlobServiceClient CreateBlobServiceClient(BlobClientOptions options)
    {
        if (_connectionString is not null)
        {
            // A connection string without this service's endpoint gives a client with no URI.
            return TryCreate(() => new BlobServiceClient(_connectionString, options), out var client) && client.Uri is not null
                ? client
                : throw new StorageConfigurationException(Setting, "has no blob endpoint: set BlobEndpoint or AccountName.");
        }

        return BlobServiceUri is { } uri
            ? new BlobServiceClient(uri, Credential!, options)
            : throw new StorageConfigurationException(Setting + "__blobServiceUri", "is required (or " + Setting + "__accountName).");
    }

    public QueueServiceClient CreateQueueServiceClient(QueueClientOptions options)
    {
        if (_connectionString is not null)
        {
            return TryCreate(() => new QueueServiceClient(_connectionString, options), out var client) && client.Uri is not null
                ? client
                : throw new StorageConfigurationException(Setting, "has no queue endpoint: set QueueEndpoint or AccountName.");
        }

        return QueueServiceUri is { } uri
            ? new QueueServiceClient(uri, Credential!, options)
            : throw new StorageConfigurationException(Setting + "__queueServiceUri", "is required (or " + Setting + "__accountName).");
    }

    private static bool TryCreate<T>(Func<T> create, out T client) where T : class
    {
        try
        {
            client = create();
            return true;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidOperationException or NullReferenceException)
        {
            client = null!;
            return false;
        }
    }

    private static StorageConnection FromIdentitySettings(IConfigurationSection section, string name)
    {
        var clientId = section["clientId"];
        var kind = section["credential"];
        if (kind is { Length: > 0 } && !string.Equals(kind, "managedidentity", StringComparison.OrdinalIgnoreCase))
        {
            throw new StorageConfigurationException(name + "__credential", $"must be 'managedidentity' or unset, not '{kind}'.");
        }

        var account = section["accountName"];
        var blob = section["blobServiceUri"] is { Length: > 0 } b ? Absolute(b, name + "__blobServiceUri") : null;
        var queue = section["queueServiceUri"] is { Length: > 0 } q ? Absolute(q, name + "__queueServiceUri") : null;
        if (account is { Length: > 0 })
        {
            blob ??= new Uri($"https://{account}.blob.core.windows.net/");
            queue ??= new Uri($"https://{account}.queue.core.windows.net/");
        }

        if (blob is null && queue is null)
        {
            throw new StorageConfigurationException(name + "__accountName", "is required (or " + name + "__blobServiceUri / __queueServiceUri).");
        }

        TokenCredential credential = kind is { Length: > 0 }
            ? new ManagedIdentityCredential(string.IsNullOrEmpty(clientId) ? ManagedIdentityId.SystemAssigned : ManagedIdentityId.FromUserAssignedClientId(clientId))
            : new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = string.IsNullOrEmpty(clientId) ? null : clientId });
        return new StorageConnection(name, null, blob, queue, credential);
    }

    private static Uri Absolute(string value, string setting) =>
        Uri.TryCreate(value.EndsWith('/') ? value : value + "/", UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new StorageConfigurationException(setting, "must be an absolute http(s) URL.");
}

/// <summary>A storage setting is missing or malformed; the message starts with the setting's name.</summary>
public sealed class StorageConfigurationException(string setting, string problem) : Exception($"{setting} {problem}")
{
    public string Setting { get; } = setting;
}
