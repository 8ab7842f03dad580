using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using BackupRelay.HuaweiCloud.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BackupRelay.HuaweiCloud.Auth;

/// <summary>
/// IAM password tokens, cached per project and replaced ahead of <c>expires_at</c>. Concurrent
/// callers share one refresh. Tokens are secrets: never logged.
/// </summary>
public sealed partial class IamTokenProvider(IIamApi iam, IOptions<HuaweiCloudOptions> options, TimeProvider time,
    ILogger<IamTokenProvider> logger)
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public async ValueTask<string> GetTokenAsync(string projectId, CancellationToken cancellationToken = default)
    {
        var entry = _entries.GetOrAdd(projectId, _ => new Entry());
        var cached = entry.Token;
        if (cached is not null && time.GetUtcNow() < cached.RefreshAt)
        {
            return cached.Value;
        }

        await entry.Gate.WaitAsync(cancellationToken);
        try
        {
            cached = entry.Token;
            if (cached is not null && time.GetUtcNow() < cached.RefreshAt)
            {
                return cached.Value;
            }

            entry.Token = await RequestAsync(projectId, cancellationToken);
            return entry.Token.Value;
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    /// <summary>Drops <paramref name="token"/> if it is still the cached one (a 401 said it is no good).</summary>
    public void Invalidate(string projectId, string token)
    {
        if (_entries.TryGetValue(projectId, out var entry) && entry.Token?.Value == token)
        {
            entry.Token = null;
        }
    }

    private async Task<CachedToken> RequestAsync(string projectId, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var auth = settings.Auth;
        var body = new IamTokenRequest(new IamAuth(
            new IamIdentity(["password"], new IamPassword(new IamUser(auth.UserName!, auth.Password!, new IamDomain(auth.DomainName!)))),
            new IamScope(new IamProject(projectId, null))));
        using var response = await iam.CreateTokenAsync(body, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Created && !response.IsSuccessStatusCode)
        {
            var error = await HuaweiCloudErrors.FromResponseAsync(response, time, cancellationToken);
            Log.TokenRefused(logger, projectId, (int)response.StatusCode, error.ErrorCode);
            throw new HuaweiCloudException(HuaweiCloudErrorKind.Auth, error.StatusCode, error.ErrorCode,
                "IAM refused the token request: " + error.ErrorMessage, error.RequestId);
        }

        var token = response.Headers.TryGetValues("X-Subject-Token", out var values) ? values.FirstOrDefault() : null;
        if (string.IsNullOrEmpty(token))
        {
            throw new HuaweiCloudException(HuaweiCloudErrorKind.Auth, response.StatusCode, null,
                "IAM answered without an X-Subject-Token header.", null);
        }

        var parsed = await response.Content.ReadFromJsonAsync(HuaweiSnakeJson.Default.IamTokenResponse, cancellationToken);
        var now = time.GetUtcNow();
        var expiresAt = HuaweiTime.Parse(parsed?.Token?.ExpiresAt) ?? now.AddHours(24);
        var lifetime = expiresAt - now;

        // Refresh ahead, but never later than half-way through a short-lived token.
        var ahead = auth.TokenRefreshAhead < lifetime / 2 ? auth.TokenRefreshAhead : lifetime / 2;
        Log.TokenIssued(logger, projectId, expiresAt);
        return new CachedToken(token, expiresAt, expiresAt - ahead);
    }

    private sealed class Entry
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public volatile CachedToken? Token;
    }

    private sealed record CachedToken(string Value, DateTimeOffset ExpiresAt, DateTimeOffset RefreshAt);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "IAM token issued for project {ProjectId}, expires at {ExpiresAt:o}")]
        public static partial void TokenIssued(ILogger logger, string projectId, DateTimeOffset expiresAt);

        [LoggerMessage(2, LogLevel.Warning, "IAM refused a token for project {ProjectId}: HTTP {Status} {ErrorCode}")]
        public static partial void TokenRefused(ILogger logger, string projectId, int status, string? errorCode);
    }
}
