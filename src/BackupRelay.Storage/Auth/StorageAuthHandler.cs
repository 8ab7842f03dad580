using System.Globalization;
using Azure.Core;

namespace BackupRelay.Storage.Auth;

/// <summary>
/// Authorizes each attempt: Shared Key signature (fresh <c>x-ms-date</c>), SAS appended to the
/// query, or an Entra ID bearer token for the storage audience.
/// </summary>
internal sealed class StorageAuthHandler(StorageConnection connection, TimeProvider time) : DelegatingHandler
{
    public const string Version = "2025-01-05";
    private static readonly string[] Scopes = ["https://storage.azure.com/.default"];
    private readonly SemaphoreSlim _tokenGate = new(1, 1);
    private AccessToken _token;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.Remove("x-ms-date");
        request.Headers.Remove("x-ms-version");
        request.Headers.Remove("Authorization");
        request.Headers.TryAddWithoutValidation("x-ms-date", time.GetUtcNow().ToString("R", CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation("x-ms-version", Version);
        switch (connection.Auth)
        {
            case StorageAuthKind.SharedKey:
                request.Headers.TryAddWithoutValidation("Authorization", SharedKeySigner.Authorization(request, connection.AccountName, connection.AccountKey!));
                break;
            case StorageAuthKind.SharedAccessSignature:
                if (!request.Options.TryGetValue(SasApplied, out _))
                {
                    var uri = request.RequestUri!;
                    request.RequestUri = new Uri(uri + (uri.Query.Length > 0 ? "&" : "?") + connection.SharedAccessSignature);
                    request.Options.Set(SasApplied, true);
                }

                break;
            case StorageAuthKind.Token:
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + await TokenAsync(cancellationToken));
                break;
            default:
                throw new InvalidOperationException($"Unknown auth kind {connection.Auth}.");
        }

        return await base.SendAsync(request, cancellationToken);
    }

    private static readonly HttpRequestOptionsKey<bool> SasApplied = new("BackupRelay.Storage.SasApplied");

    private async Task<string> TokenAsync(CancellationToken cancellationToken)
    {
        if (_token.ExpiresOn - time.GetUtcNow() > TimeSpan.FromMinutes(5))
        {
            return _token.Token;
        }

        await _tokenGate.WaitAsync(cancellationToken);
        try
        {
            if (_token.ExpiresOn - time.GetUtcNow() <= TimeSpan.FromMinutes(5))
            {
                _token = await connection.Credential!.GetTokenAsync(new TokenRequestContext(Scopes), cancellationToken);
            }

            return _token.Token;
        }
        finally
        {
            _tokenGate.Release();
        }
    }
}
