using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.HuaweiCloud;

public sealed class AuthTests : ClientHarness
{
    protected override Dictionary<string, string?> Settings(Uri emulator) => new() { ["Auth:TokenRefreshAhead"] = "00:30:00" };

    [Fact]
    public async Task Token_is_cached_and_shared_by_concurrent_callers()
    {
        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Ges.GetGraphAsync(DemoSeed.GraphId)));
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        Assert.Equal(1, TokenRequests);
    }

    [Fact]
    public async Task Token_is_replaced_ahead_of_its_expiry()
    {
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        Advance(TimeSpan.FromHours(23));
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        Assert.Equal(1, TokenRequests);
        Advance(TimeSpan.FromMinutes(31));
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        Assert.Equal(2, TokenRequests);
        Assert.DoesNotContain(Requests("GET", "/graphs/"), r => r.Status == 401);
    }

    [Fact]
    public async Task A_revoked_token_is_refreshed_once_and_the_call_succeeds()
    {
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        lock (State.Sync)
        {
            State.Tokens.Clear();
        }

        var graph = await Ges.GetGraphAsync(DemoSeed.GraphId);
        Assert.Equal(DemoSeed.GraphId, graph.Id);
        Assert.Equal(2, TokenRequests);
        Assert.Equal([200, 401, 200], Requests("GET", $"/graphs/{DemoSeed.GraphId}").Select(r => r.Status));
    }

    [Fact]
    public async Task A_401_that_persists_fails_after_one_refresh_without_looping()
    {
        await Ges.GetGraphAsync(DemoSeed.GraphId);
        State.ClearRequests();
        Fault(new FaultSpec { Path = "/v2/*", Kind = "status", Status = 401, Count = 0, ErrorCode = "APIG.0301", ErrorMessage = "Incorrect IAM authentication information" });
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
        Assert.Equal(HuaweiCloudErrorKind.Auth, error.Kind);
        Assert.Equal("APIG.0301", error.ErrorCode);
        Assert.Equal(2, Requests("GET", "/graphs/").Count);
        Assert.Equal(1, TokenRequests);
    }

    [Fact]
    public async Task Wrong_password_fails_with_an_auth_error_naming_iam()
    {
        State.Users.Clear();
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
        Assert.Equal(HuaweiCloudErrorKind.Auth, error.Kind);
        Assert.Contains("IAM", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, TokenRequests);
    }
}

public sealed class AkSkAuthTests : ClientHarness
{
    protected override bool UseAkSk => true;

    [Fact]
    public async Task Ak_sk_401_is_never_retried()
    {
        State.KeyPairs[DemoSeed.AccessKey] = new SeedKeyPair { AccessKey = DemoSeed.AccessKey, SecretKey = "rotated" };
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
        Assert.Equal(HuaweiCloudErrorKind.Auth, error.Kind);
        Assert.Single(Requests("GET", "/graphs/"));
    }

    [Fact]
    public async Task Security_token_is_sent_for_temporary_credentials()
    {
        State.KeyPairs[DemoSeed.AccessKey] = new SeedKeyPair { AccessKey = DemoSeed.AccessKey, SecretKey = DemoSeed.SecretKey, SecurityToken = "sts-token" };
        await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetGraphAsync(DemoSeed.GraphId));
    }
}

public sealed class AkSkSecurityTokenTests : ClientHarness
{
    protected override bool UseAkSk => true;

    protected override Dictionary<string, string?> Settings(Uri emulator) => new() { ["Auth:SecurityToken"] = "sts-token" };

    [Fact]
    public async Task Temporary_credentials_with_their_security_token_are_accepted()
    {
        State.KeyPairs[DemoSeed.AccessKey] = new SeedKeyPair { AccessKey = DemoSeed.AccessKey, SecretKey = DemoSeed.SecretKey, SecurityToken = "sts-token" };
        Assert.Equal(DemoSeed.GraphId, (await Ges.GetGraphAsync(DemoSeed.GraphId)).Id);
    }
}
