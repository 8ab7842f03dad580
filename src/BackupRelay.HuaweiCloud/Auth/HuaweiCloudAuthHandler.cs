using System.Net;
using Microsoft.Extensions.Options;

namespace BackupRelay.HuaweiCloud.Auth;

/// <summary>
/// Authenticates each attempt: an IAM token (replaced and the request sent once more on a 401), or
/// an AK/SK signature computed afresh (a 401 is returned as is: repeated AK/SK failures lock the key).
/// </summary>
public sealed class HuaweiCloudAuthHandler(IamTokenProvider tokens, IOptions<HuaweiCloudOptions> options, TimeProvider time) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (request.Content is not null)
        {
            // Buffered so it can be hashed for signing and sent again after a token refresh.
            await request.Content.LoadIntoBufferAsync(cancellationToken);
        }

        if (settings.Auth.EffectiveMode == HuaweiCloudAuthMode.AkSk)
        {
            await SignAsync(request, settings, cancellationToken);
            return await base.SendAsync(request, cancellationToken);
        }

        var token = await tokens.GetTokenAsync(settings.ProjectId, cancellationToken);
        request.Headers.Remove("X-Auth-Token");
        request.Headers.TryAddWithoutValidation("X-Auth-Token", token);
        var response = await base.SendAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }

        response.Dispose();
        tokens.Invalidate(settings.ProjectId, token);
        var fresh = await tokens.GetTokenAsync(settings.ProjectId, cancellationToken);
        request.Headers.Remove("X-Auth-Token");
        request.Headers.TryAddWithoutValidation("X-Auth-Token", fresh);
        return await base.SendAsync(request, cancellationToken);
    }

    private async Task SignAsync(HttpRequestMessage request, HuaweiCloudOptions settings, CancellationToken cancellationToken)
    {
        var auth = settings.Auth;
        var uri = request.RequestUri!;
        var date = SdkHmacSha256.FormatDate(time.GetUtcNow());
        foreach (var name in new[] { "X-Sdk-Date", "X-Project-Id", "X-Security-Token", "Authorization" })
        {
            request.Headers.Remove(name);
        }

        var signed = new List<KeyValuePair<string, string>>
        {
            new("host", uri.IsDefaultPort ? uri.Host : uri.Authority),
            new("x-sdk-date", date),
            new("x-project-id", settings.ProjectId),
        };
        request.Headers.TryAddWithoutValidation("X-Sdk-Date", date);
        request.Headers.TryAddWithoutValidation("X-Project-Id", settings.ProjectId);
        if (!string.IsNullOrEmpty(auth.SecurityToken))
        {
            request.Headers.TryAddWithoutValidation("X-Security-Token", auth.SecurityToken);
            signed.Add(new("x-security-token", auth.SecurityToken));
        }

        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken);
        var canonical = SdkHmacSha256.CanonicalRequest(request.Method.Method, uri.AbsolutePath, uri.Query, signed,
            SdkHmacSha256.HexSha256(body));
        var signature = SdkHmacSha256.Signature(auth.SecretKey!, SdkHmacSha256.StringToSign(date, canonical));
        request.Headers.TryAddWithoutValidation("Authorization",
            SdkHmacSha256.AuthorizationHeader(auth.AccessKey!, SdkHmacSha256.SignedHeaderNames(signed.Select(h => h.Key)), signature));
    }
}
