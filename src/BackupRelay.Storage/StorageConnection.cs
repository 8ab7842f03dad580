using Azure.Core;
using Azure.Identity;
using Microsoft.Extensions.Configuration;

namespace BackupRelay.Storage;

/// <summary>How requests to a storage account are authorized.</summary>
public enum StorageAuthKind
{
    SharedKey,
    SharedAccessSignature,
    Token,
}

/// <summary>
/// A storage account connection as Azure Functions defines one, so the same app settings serve the
/// Functions host and this app: a connection string in <c>&lt;Name&gt;</c>, or the identity-based
/// group <c>&lt;Name&gt;__accountName</c> / <c>__blobServiceUri</c> / <c>__queueServiceUri</c> /
/// <c>__credential</c> / <c>__clientId</c>.
/// </summary>
public sealed class StorageConnection
{
    public const string DevelopmentAccountName = "devstoreaccount1";

    /// <summary>The well-known Azurite / storage emulator key (public, not a secret).</summary>
    public const string DevelopmentAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private StorageConnection(string accountName, Uri? blobEndpoint, Uri? queueEndpoint, StorageAuthKind auth)
    {
        AccountName = accountName;
        BlobEndpoint = blobEndpoint;
        QueueEndpoint = queueEndpoint;
        Auth = auth;
    }

    public string AccountName { get; }
    public Uri? BlobEndpoint { get; }
    public Uri? QueueEndpoint { get; }
    public StorageAuthKind Auth { get; }

    /// <summary>Account key bytes (Shared Key). A secret.</summary>
    internal byte[]? AccountKey { get; private init; }

    /// <summary>SAS query without the leading '?'. A secret.</summary>
    internal string? SharedAccessSignature { get; private init; }

    internal TokenCredential? Credential { get; private init; }

    public Uri RequireBlobEndpoint(string name) => BlobEndpoint
        ?? throw new StorageConfigurationException(name, "has no blob endpoint (set BlobEndpoint, AccountName, or __blobServiceUri).");

    public Uri RequireQueueEndpoint(string name) => QueueEndpoint
        ?? throw new StorageConfigurationException(name, "has no queue endpoint (set QueueEndpoint, AccountName, or __queueServiceUri).");

    /// <summary>Reads connection <paramref name="name"/> from configuration in either form; the error names the setting.</summary>
    public static StorageConnection FromConfiguration(IConfiguration configuration, string name, Func<StorageConnection, TokenCredential>? credentialFactory = null)
    {
        var connectionString = configuration[name] ?? configuration.GetConnectionString(name);
        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            return Parse(connectionString, name);
        }

        var section = configuration.GetSection(name);
        if (section.GetChildren().Any())
        {
            return FromIdentitySettings(section, name);
        }

        throw new StorageConfigurationException(name,
            "is not set: give a connection string, or identity-based settings such as " + name + "__accountName.");
    }

    /// <summary>Parses a storage connection string.</summary>
    public static StorageConnection Parse(string connectionString, string name = "connection string")
    {
        var parts = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0)
            {
                throw new StorageConfigurationException(name, "is not a valid storage connection string (expected Key=Value pairs).");
            }

            parts[part[..eq].Trim()] = part[(eq + 1)..].Trim();
        }

        if (parts.TryGetValue("UseDevelopmentStorage", out var dev) && bool.TryParse(dev, out var isDev) && isDev)
        {
            var proxy = parts.TryGetValue("DevelopmentStorageProxyUri", out var p) ? new Uri(p) : new Uri("http://127.0.0.1");
            return new StorageConnection(DevelopmentAccountName,
                new Uri($"{proxy.Scheme}://{proxy.Host}:10000/{DevelopmentAccountName}/"),
                new Uri($"{proxy.Scheme}://{proxy.Host}:10001/{DevelopmentAccountName}/"),
                StorageAuthKind.SharedKey)
            {
                AccountKey = Convert.FromBase64String(DevelopmentAccountKey),
            };
        }

        parts.TryGetValue("AccountName", out var account);
        var protocol = parts.TryGetValue("DefaultEndpointsProtocol", out var proto) ? proto : "https";
        var suffix = parts.TryGetValue("EndpointSuffix", out var s) ? s : "core.windows.net";
        var blob = Endpoint(parts, "BlobEndpoint", name) ?? (account is null ? null : new Uri($"{protocol}://{account}.blob.{suffix}/"));
        var queue = Endpoint(parts, "QueueEndpoint", name) ?? (account is null ? null : new Uri($"{protocol}://{account}.queue.{suffix}/"));
        if (blob is null && queue is null)
        {
            throw new StorageConfigurationException(name, "names no account: set AccountName or BlobEndpoint/QueueEndpoint.");
        }

        account ??= AccountFromEndpoint(blob ?? queue!);

        if (parts.TryGetValue("SharedAccessSignature", out var sas) && sas.Length > 0)
        {
            return new StorageConnection(account, blob, queue, StorageAuthKind.SharedAccessSignature) { SharedAccessSignature = sas.TrimStart('?') };
        }

        if (parts.TryGetValue("AccountKey", out var key) && key.Length > 0)
        {
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(key);
            }
            catch (FormatException)
            {
                throw new StorageConfigurationException(name, "has an AccountKey that is not base64.");
            }

            return new StorageConnection(account, blob, queue, StorageAuthKind.SharedKey) { AccountKey = bytes };
        }

        throw new StorageConfigurationException(name, "has neither AccountKey nor SharedAccessSignature; for managed identity use " + name + "__accountName settings instead.");
    }

    private static StorageConnection FromIdentitySettings(IConfigurationSection section, string name)
    {
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

        var clientId = section["clientId"];
        var credential = section["credential"];
        TokenCredential token = string.Equals(credential, "managedidentity", StringComparison.OrdinalIgnoreCase)
            ? new ManagedIdentityCredential(string.IsNullOrEmpty(clientId) ? ManagedIdentityId.SystemAssigned : ManagedIdentityId.FromUserAssignedClientId(clientId))
            : new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = string.IsNullOrEmpty(clientId) ? null : clientId });
        return new StorageConnection(account ?? AccountFromEndpoint(blob ?? queue!), blob, queue, StorageAuthKind.Token) { Credential = token };
    }

    private static Uri? Endpoint(Dictionary<string, string> parts, string key, string name) =>
        parts.TryGetValue(key, out var value) && value.Length > 0 ? Absolute(value, $"{name} ({key})") : null;

    private static Uri Absolute(string value, string setting) =>
        Uri.TryCreate(value.EndsWith('/') ? value : value + "/", UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new StorageConfigurationException(setting, "must be an absolute http(s) URL.");

    /// <summary><c>https://acct.blob.core.windows.net</c> → acct; <c>http://127.0.0.1:10000/acct</c> → acct.</summary>
    private static string AccountFromEndpoint(Uri endpoint)
    {
        var path = endpoint.AbsolutePath.Trim('/');
        return path.Length > 0 ? path.Split('/')[0] : endpoint.Host.Split('.')[0];
    }
}

/// <summary>A storage setting is missing or malformed; the message starts with the setting's name.</summary>
public sealed class StorageConfigurationException(string setting, string problem) : Exception($"{setting} {problem}")
{
    public string Setting { get; } = setting;
}
