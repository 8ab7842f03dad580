using System.Net;
using System.Text.Json.Nodes;

namespace BackupRelay.Tests.Integration.Emulator;

public sealed class IamTests : EmulatorHarness
{
    [Fact]
    public async Task Password_token_is_created_with_subject_token_header_and_expiry()
    {
        using var response = await Http.PostAsync("v3/auth/tokens?nocatalog=true", Json(PasswordAuthBody()));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.StartsWith("MII", response.Headers.GetValues("X-Subject-Token").Single(), StringComparison.Ordinal);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var expires = DateTimeOffset.Parse(body["token"]!["expires_at"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var issued = DateTimeOffset.Parse(body["token"]!["issued_at"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(TimeSpan.FromHours(24), expires - issued);
        Assert.Equal(ProjectId, body["token"]!["project"]!["id"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("backup-relay", "wrong", "demo-domain", "cn-north-4")]
    [InlineData("nobody", "emulator-password", "demo-domain", "cn-north-4")]
    [InlineData("backup-relay", "emulator-password", "other-domain", "cn-north-4")]
    [InlineData("backup-relay", "emulator-password", "demo-domain", "xx-nowhere-1")]
    public async Task Wrong_credentials_or_project_get_401_with_the_keystone_error_body(string user, string password, string domain, string project)
    {
        using var response = await Http.PostAsync("v3/auth/tokens", Json(PasswordAuthBody(user, password, domain, project)));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(401, body["error"]!["code"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(body["error"]!["message"]!.GetValue<string>()));
        Assert.False(response.Headers.Contains("X-Subject-Token"));
    }

    [Fact]
    public async Task Body_without_password_method_is_a_bad_request()
    {
        using var response = await Http.PostAsync("v3/auth/tokens", Json("""{"auth":{"identity":{"methods":["token"]}}}"""));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Expired_token_gets_401_APIG_0307_and_unknown_token_APIG_0301()
    {
        var token = await TokenAsync();
        var (ok, _) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token);
        Assert.Equal(200, ok);

        Advance(24 * 3600 + 1);
        var (expired, body) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token);
        Assert.Equal(401, expired);
        Assert.Equal("APIG.0307", body!["error_code"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(body["request_id"]!.GetValue<string>()));

        var (unknown, body2) = await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: "MIInot-a-token");
        Assert.Equal(401, unknown);
        Assert.Equal("APIG.0301", body2!["error_code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Missing_credentials_get_401()
    {
        using var response = await Http.GetAsync($"{Graphs}/{GraphId}");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("APIG.0301", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error_code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Token_lifetime_is_configurable()
    {
        State.Settings.TokenLifetimeSeconds = 60;
        var token = await TokenAsync();
        Advance(59);
        Assert.Equal(200, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Status);
        Advance(2);
        Assert.Equal(401, (await CallAsync(HttpMethod.Get, $"{Graphs}/{GraphId}", token: token)).Status);
    }

    [Fact]
    public async Task Token_of_one_project_is_refused_on_another()
    {
        var (status, body) = await CallAsync(HttpMethod.Get, "v2/ffffffffffffffffffffffffffffffff/graphs/backups");
        Assert.Equal(403, status);
        Assert.StartsWith("APIG.", body!["error_code"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
