using BackupRelay.HuaweiCloud.Auth;
using Microsoft.AspNetCore.Http.Features;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// API-gateway authentication for GES and CSE: an IAM token in <c>X-Auth-Token</c>, or an
/// <c>SDK-HMAC-SHA256</c> signature. Failures answer 401 with the gateway's error body.
/// </summary>
internal static class RequestAuthentication
{
    public const string ProjectItem = "AuthProject";

    public static async Task<IResult?> AuthenticateAsync(HttpContext context, EmulatorState state)
    {
        var token = context.Request.Headers["X-Auth-Token"].ToString();
        if (token.Length > 0)
        {
            lock (state.Sync)
            {
                if (!state.Tokens.TryGetValue(token, out var issued))
                {
                    return Responses.Ges(context, 401, "APIG.0301", "Incorrect IAM authentication information: decrypt token fail");
                }

                if (issued.ExpiresAt <= state.Now)
                {
                    return Responses.Ges(context, 401, "APIG.0307", "The token must be updated.");
                }

                context.Items[ProjectItem] = issued.ProjectId;
                return null;
            }
        }

        var authorization = context.Request.Headers.Authorization.ToString();
        if (authorization.StartsWith(SdkHmacSha256.Algorithm, StringComparison.Ordinal))
        {
            return await VerifySignatureAsync(context, state, authorization);
        }

        return Responses.Ges(context, 401, "APIG.0301", "Incorrect IAM authentication information: Authorization header not found");
    }

    private static async Task<IResult?> VerifySignatureAsync(HttpContext context, EmulatorState state, string authorization)
    {
        if (!SdkHmacSha256.TryParseAuthorization(authorization, out var accessKey, out var signedHeaders, out var signature))
        {
            return Responses.Ges(context, 401, "APIG.0301", "Incorrect IAM authentication information: Authorization header is malformed");
        }

        var request = context.Request;
        request.EnableBuffering();
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body, context.RequestAborted);
        request.Body.Position = 0;

        lock (state.Sync)
        {
            var now = state.Now;
            state.KeyFailures.TryGetValue(accessKey, out var failures);
            if (failures.LockedUntil > now)
            {
                return Responses.Ges(context, 401, "APIG.0301", "Incorrect IAM authentication information: the access key is locked after repeated failures");
            }

            var failure = Check();
            if (failure is null)
            {
                state.KeyFailures.Remove(accessKey);
                return null;
            }

            failures.Failures++;
            if (failures.Failures >= state.Settings.AccessKeyLockoutThreshold)
            {
                failures = (0, now.AddMinutes(5));
            }

            state.KeyFailures[accessKey] = failures;
            return Responses.Ges(context, 401, "APIG.0301", "Incorrect IAM authentication information: " + failure);

            string? Check()
            {
                if (!state.KeyPairs.TryGetValue(accessKey, out var pair))
                {
                    return "ak not found";
                }

                var sdkDate = request.Headers[SdkHmacSha256.DateHeader].ToString();
                if (!SdkHmacSha256.TryParseDate(sdkDate, out var signedAt))
                {
                    return "x-sdk-date is missing or malformed";
                }

                if ((now - signedAt).Duration() > TimeSpan.FromMinutes(state.Settings.SignatureSkewMinutes))
                {
                    return "x-sdk-date is out of the allowed time window";
                }

                if (!signedHeaders.Contains("host") || !signedHeaders.Contains("x-sdk-date"))
                {
                    return "SignedHeaders must include host and x-sdk-date";
                }

                if (pair.SecurityToken is not null && request.Headers["X-Security-Token"] != pair.SecurityToken)
                {
                    return "security token is missing or wrong";
                }

                var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path + request.QueryString;
                var q = raw.IndexOf('?');
                var path = q < 0 ? raw : raw[..q];
                var query = q < 0 ? "" : raw[(q + 1)..];
                var headers = signedHeaders.Select(name => new KeyValuePair<string, string>(name,
                    name == "host" ? request.Headers.Host.ToString() : request.Headers[name].ToString()));
                var canonical = SdkHmacSha256.CanonicalRequest(request.Method, path, query, headers,
                    SdkHmacSha256.HexSha256(body.ToArray()));
                var expected = SdkHmacSha256.Signature(pair.SecretKey, SdkHmacSha256.StringToSign(sdkDate, canonical));
                if (!SdkHmacSha256.SignaturesEqual(expected, signature))
                {
                    return "verify aksk signature fail";
                }

                var project = request.Headers["X-Project-Id"].ToString();
                if (project.Length > 0)
                {
                    context.Items[ProjectItem] = project;
                }

                return null;
            }
        }
    }

    /// <summary>The path's project must be known and match the token's (or the signed X-Project-Id).</summary>
    public static IResult? CheckProject(HttpContext context, EmulatorState state, string projectId)
    {
        var authorized = context.Items.TryGetValue(ProjectItem, out var p) ? (string?)p : null;
        if (!state.Projects.ContainsKey(projectId) || (authorized is not null && authorized != projectId))
        {
            return Responses.Ges(context, 403, "APIG.0302",
                "The IAM user is not authorized to access the API: the credentials are not scoped to project " + projectId + ".");
        }

        return null;
    }
}
