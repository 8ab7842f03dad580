using BackupRelay.Copying;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace BackupRelay.Tests.Integration.Copying;

/// <summary>
/// A download link's bytes come from its own host: a redirect to another host (here to another file of the same
/// size, whose ETag its bytes match) is a failed link that is refreshed, never a new source to verify against.
/// </summary>
public sealed class RedirectTests : CopyHarness
{
    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task A_link_redirected_off_its_host_is_refreshed_not_followed(DestinationKind kind)
    {
        var file = await BackupFileAsync((Block * 3) + 17);
        var other = await BackupFileAsync(file.Size);
        var redirects = 0;
        var (redirector, address) = await LoopbackServer.StartAsync(app => app.MapGet("/{**path}", () =>
        {
            Interlocked.Increment(ref redirects);
            return Results.Redirect(other.Link!.ToString());
        }));
        await using var _ = redirector;

        var destination = await DestinationAsync(kind);
        var request = Request(file) with { SourceLink = new Uri($"{address}/backup/{file.Name}?Signature=x") };
        var result = await Copier().CopyAsync(destination, request);

        // The client here follows redirects (the app's own does not): the copier still refuses the other host's answer.
        Assert.True(redirects >= 1);
        Assert.True(Refreshes >= 1);
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(Verification.SourceMd5, result.Verification);
        Assert.Contains(Logs.Lines(), l => l.Contains("a link is never followed off its host", StringComparison.Ordinal));
        Assert.DoesNotContain("Signature=x", Logs.All(), StringComparison.Ordinal);
    }
}
