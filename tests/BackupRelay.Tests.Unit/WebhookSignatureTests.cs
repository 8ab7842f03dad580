using System.Text;
using BackupRelay.Http;

namespace BackupRelay.Tests.Unit;

/// <summary>The webhook signature at its edges: the tolerance to the second either way, and every signed part changed alone.</summary>
public sealed class WebhookSignatureTests
{
    private const string Secret = "webhook-secret";
    private const string Path = "/api/graphs/g-1/restores?force=true";
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(5);
    private static readonly byte[] Body = Encoding.UTF8.GetBytes("""{"backupId":"b-1"}""");

    private static string? Check(string header, string method = "POST", string path = Path, byte[]? body = null) =>
        WebhookSignature.Check(Secret, header, Now, Tolerance, method, path, body ?? Body, acceptLegacy: false, out _);

    [Theory]
    [InlineData(-300, true)]
    [InlineData(-301, false)]
    [InlineData(300, true)]
    [InlineData(301, false)]
    [InlineData(0, true)]
    public void A_signature_is_accepted_up_to_the_tolerance_either_way_and_not_a_second_beyond(int offsetSeconds, bool accepted)
    {
        var problem = Check(WebhookSignature.Sign(Secret, Now.AddSeconds(offsetSeconds), "POST", Path, Body));
        Assert.Equal(accepted, problem is null);
        if (!accepted)
        {
            Assert.Contains("time window", problem, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("PUT", Path)]
    [InlineData("POST", "/api/graphs/g-2/restores?force=true")]
    [InlineData("POST", "/api/graphs/g-1/restores")]
    [InlineData("POST", "/api/graphs/g-1/restores?force=false")]
    [InlineData("POST", "/api/graphs/g-1/restores?force=true&extra=1")]
    public void A_signature_for_another_method_path_or_query_does_not_match(string method, string path)
    {
        var header = WebhookSignature.Sign(Secret, Now, "POST", Path, Body);
        Assert.Null(Check(header));
        Assert.Contains("does not match", Check(header, method, path), StringComparison.Ordinal);
    }

    [Fact]
    public void A_body_changed_by_one_byte_or_another_secret_does_not_match()
    {
        var header = WebhookSignature.Sign(Secret, Now, "POST", Path, Body);
        var changed = (byte[])Body.Clone();
        changed[^2] ^= 1;
        Assert.Contains("does not match", Check(header, body: changed), StringComparison.Ordinal);
        Assert.Contains("does not match", Check(WebhookSignature.Sign("another-secret", Now, "POST", Path, Body)), StringComparison.Ordinal);
    }
}
