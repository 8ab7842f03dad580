using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.HuaweiCloud;

public sealed class SecretsTests : ClientHarness
{
    [Fact]
    public async Task No_token_password_or_download_link_reaches_the_logs_or_errors()
    {
        var added = await Ges.AddBackupAsync(DemoSeed.GraphId);
        Advance(TimeSpan.FromSeconds(10));
        var files = await Ges.GetDownloadLinksAsync(DemoSeed.GraphId, added.BackupId!);
        Fault(new FaultSpec { Path = "/v2/*", Kind = "status", Status = 503, Count = 0 });
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => Ges.GetDownloadLinksAsync(DemoSeed.GraphId, added.BackupId!));
        lock (State.Sync)
        {
            State.Tokens.Clear();
        }

        State.Faults.Clear();
        await Ges.GetGraphAsync(DemoSeed.GraphId);

        string[] tokens;
        lock (State.Sync)
        {
            tokens = [.. State.Tokens.Keys];
        }

        var logs = Logs.All() + "\n" + error;
        Assert.NotEmpty(Logs.Lines());
        Assert.Contains("Retrying", logs, StringComparison.Ordinal);
        Assert.DoesNotContain(DemoSeed.Password, logs, StringComparison.Ordinal);
        Assert.All(tokens, t => Assert.DoesNotContain(t, logs, StringComparison.Ordinal));
        Assert.All(files.Files, f => Assert.DoesNotContain(f.DownloadLink, logs, StringComparison.Ordinal));
        Assert.DoesNotContain("Signature=", logs, StringComparison.Ordinal);
    }
}
