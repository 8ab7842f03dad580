using Refit;

namespace BackupRelay.HuaweiCloud.Auth;

/// <summary>
/// IAM password tokens. The answer is the raw response: the token itself comes in the
/// <c>X-Subject-Token</c> header, which a deserialized body would lose.
/// </summary>
public interface IIamApi
{
    // IAM documents this exact Content-Type; "utf8" is not a charset name .NET would produce itself.
    [Post("/v3/auth/tokens?nocatalog=true")]
    [Headers("Content-Type: application/json;charset=utf8")]
    Task<HttpResponseMessage> CreateTokenAsync([Body] IamTokenRequest body, CancellationToken cancellationToken);
}
