using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using BackupRelay.HuaweiCloud.Auth;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Emulator;

/// <summary>The emulator verifies SDK-HMAC-SHA256 signatures as the API gateway does.</summary>
public sealed class AkSkTests : EmulatorHarness
{
    private HttpRequestMessage Signed(HttpMethod method, string pathAndQuery, string? body = null, string secretKey = DemoSeed.SecretKey,
        DateTimeOffset? at = null, string? projectId = null)
    {
        var request = new HttpRequestMessage(method, pathAndQuery);
        var bytes = Encoding.UTF8.GetBytes(body ?? "");
        if (body is not null)
        {
            request.Content = new ByteArrayContent(bytes);
            request.Content.Headers.ContentType = new("application/json");
        }

        var date = SdkHmacSha256.FormatDate(at ?? State.Now);
        var uri = new Uri(Http.BaseAddress!, pathAndQuery);
        var headers = new List<KeyValuePair<string, string>> { new("host", uri.Authority), new("x-sdk-date", date) };
        request.Headers.Add("X-Sdk-Date", date);
        if (projectId is not null)
        {
            request.Headers.Add("X-Project-Id", projectId);
            headers.Add(new("x-project-id", projectId));
        }

        var canonical = SdkHmacSha256.CanonicalRequest(method.Method, uri.AbsolutePath, uri.Query, headers, SdkHmacSha256.HexSha256(bytes));
        var signature = SdkHmacSha256.Signature(secretKey, SdkHmacSha256.StringToSign(date, canonical));
        request.Headers.TryAddWithoutValidation("Authorization",
            SdkHmacSha256.AuthorizationHeader(DemoSeed.AccessKey, SdkHmacSha256.SignedHeaderNames(headers.Select(h => h.Key)), signature));
        return request;
    }

    [Fact]
    public async Task Signed_get_with_query_and_signed_post_with_body_are_accepted()
    {
        using var get = await Http.SendAsync(Signed(HttpMethod.Get, $"{Graphs}/{GraphId}/backups?offset=0&limit=5", projectId: ProjectId));
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        using var post = await Http.SendAsync(Signed(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}"));
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
    }

    [Fact]
    public async Task Wrong_secret_key_is_rejected_with_401()
    {
        using var response = await Http.SendAsync(Signed(HttpMethod.Get, $"{Graphs}/{GraphId}", secretKey: "not-the-secret"));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("APIG.0301", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error_code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Tampered_body_is_rejected()
    {
        var request = Signed(HttpMethod.Post, $"{Graphs}/{GraphId}/backups/import", """{"import_path":"obs://a/b/"}""");
        request.Content = new StringContent("""{"import_path":"obs://evil/b/"}""", Encoding.UTF8, "application/json");
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Theory]
    [InlineData(-16)]
    [InlineData(16)]
    public async Task Date_more_than_15_minutes_off_is_rejected(int minutes)
    {
        using var response = await Http.SendAsync(Signed(HttpMethod.Get, $"{Graphs}/{GraphId}", at: State.Now.AddMinutes(minutes)));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var within = await Http.SendAsync(Signed(HttpMethod.Get, $"{Graphs}/{GraphId}", at: State.Now.AddMinutes(minutes > 0 ? 14 : -14)));
        Assert.Equal(HttpStatusCode.OK, within.StatusCode);
    }

    [Fact]
    public async Task Five_consecutive_failures_lock_the_key_for_five_minutes()
    {
        for (var i = 0; i < 5; i++)
        {
            using var bad = await Http.SendAsync(Signed(HttpMethod.Get, $"{Graphs}/{GraphId}", secretKey: "wrong"));
            Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
        }

        using var locked = await Http.SendAsync(Signed(HttpMethod.Get, $"{Graphs}/{GraphId}"));
        Assert.Equal(HttpStatusCode.Unauthorized, locked.StatusCode);
        Assert.Contains("locked", await locked.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        Advance(5 * 60 + 1);
        using var after = await Http.SendAsync(Signed(HttpMethod.Get, $"{Graphs}/{GraphId}"));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task Signed_project_header_must_match_the_path()
    {
        using var response = await Http.SendAsync(Signed(HttpMethod.Get, $"{Graphs}/{GraphId}", projectId: "0000000000000000000000000000abcd"));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("20191115T033655Z", SdkHmacSha256.FormatDate(DateTimeOffset.Parse("2019-11-15T03:36:55Z", CultureInfo.InvariantCulture)));
    }
}
