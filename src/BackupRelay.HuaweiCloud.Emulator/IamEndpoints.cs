using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>IAM: <c>POST /v3/auth/tokens</c> with password identity and project scope.</summary>
internal static class IamEndpoints
{
    public static void MapIam(this IEndpointRouteBuilder app) => app.MapPost("/v3/auth/tokens", IssueAsync);

    private static async Task<IResult> IssueAsync(HttpContext context, EmulatorState state)
    {
        JsonElement root;
        try
        {
            using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return Responses.Keystone(400, "The request body is not valid JSON.", "Bad Request");
        }

        var identity = Get(root, "auth", "identity");
        var methods = Get(identity, "methods");
        var user = Get(identity, "password", "user");
        var userName = Text(user, "name");
        var password = Text(user, "password");
        var domainName = Text(Get(user, "domain"), "name");
        var project = Get(root, "auth", "scope", "project");
        var projectName = Text(project, "name");
        var projectId = Text(project, "id");
        if (methods is not { ValueKind: JsonValueKind.Array } m || !m.EnumerateArray().Any(x => x.ValueKind == JsonValueKind.String && x.GetString() == "password"))
        {
            return Responses.Keystone(400, "The request is missing auth.identity.methods [\"password\"].", "Bad Request");
        }

        if (userName is null || password is null || domainName is null)
        {
            return Responses.Keystone(400, "The request is missing auth.identity.password.user name, password or domain.", "Bad Request");
        }

        if (projectName is null && projectId is null)
        {
            return Responses.Keystone(400, "The request is missing auth.scope.project name or id.", "Bad Request");
        }

        lock (state.Sync)
        {
            if (!state.Users.TryGetValue(domainName + "/" + userName, out var seeded)
                || !CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(seeded.Password), System.Text.Encoding.UTF8.GetBytes(password)))
            {
                return Responses.Keystone(401, "The username or password is wrong.", "Unauthorized");
            }

            var scoped = state.Projects.Values.FirstOrDefault(p => (projectId is not null && p.Id == projectId) || (projectId is null && p.Name == projectName));
            if (scoped is null)
            {
                return Responses.Keystone(401, "The project in the scope does not exist.", "Unauthorized");
            }

            var now = state.Now;
            var issued = new IssuedToken
            {
                UserName = userName,
                DomainName = domainName,
                ProjectId = scoped.Id,
                ProjectName = scoped.Name,
                IssuedAt = now,
                ExpiresAt = now.AddSeconds(state.Settings.TokenLifetimeSeconds),
            };
            var token = "MIIT" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(96)).Replace('/', '-').Replace('+', '_');
            state.Tokens[token] = issued;
            context.Response.Headers["X-Subject-Token"] = token;
            var domain = new DomainRef(Id(domainName), domainName);
            var body = new TokenResponse(new TokenDto(
                Format(issued.ExpiresAt), Format(issued.IssuedAt), ["password"],
                new ProjectRef(scoped.Id, scoped.Name, domain), new UserRef(Id(domainName + "/" + userName), userName, domain)));
            return Responses.Json(body, SnakeJson.Wire.TokenResponse, 201);
        }
    }

    private static string Format(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static string Id(string value) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(value)))[..32];

    private static JsonElement? Get(JsonElement? element, params string[] path)
    {
        foreach (var name in path)
        {
            if (element is not { ValueKind: JsonValueKind.Object } e || !e.TryGetProperty(name, out var next))
            {
                return null;
            }

            element = next;
        }

        return element;
    }

    private static string? Text(JsonElement? element, string name) =>
        Get(element, name) is { ValueKind: JsonValueKind.String } s ? s.GetString() : null;
}
