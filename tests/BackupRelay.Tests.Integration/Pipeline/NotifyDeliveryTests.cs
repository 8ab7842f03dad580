using System.Collections.Concurrent;
using BackupRelay.Configuration;
using BackupRelay.Messaging;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>A notification goes to the configured URL or nowhere: a redirect is a failed delivery, not a second receiver.</summary>
public sealed class NotifyRedirectTests : PipelineHarness
{
    private WebApplication _receiver = null!;
    private string _base = "";
    private readonly ConcurrentQueue<string> _hits = new();

    protected override async Task BeforeHostStartsAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _receiver = builder.Build();
        _receiver.MapPost("/moved", () =>
        {
            _hits.Enqueue("/moved");
            return Results.Redirect(_base + "/elsewhere", permanent: false, preserveMethod: true);
        });
        _receiver.MapPost("/elsewhere", () =>
        {
            _hits.Enqueue("/elsewhere");
            return Results.NoContent();
        });
        await _receiver.StartAsync();
        _base = _receiver.Urls.First();
    }

    protected override Dictionary<string, string?> ExtraSettings() => new()
    {
        ["Notify:Url"] = _base + "/moved",
        ["Notify:Secret"] = "notify-secret-0123456789abcdef",
        ["Notify:MaxAttempts"] = "1",
    };

    [Fact]
    public async Task A_307_from_the_receiver_is_not_followed()
    {
        await Services.GetRequiredService<WorkQueues>().SendNotifyAsync(new NotifyMessage(1, "evt-redirect-1", """{"type":"test"}"""), null);
        var parked = await NotifyPoison.WaitAsync(Services, TimeSpan.FromSeconds(30));
        Assert.Equal(["/moved"], _hits.ToArray());
        Assert.Contains("HTTP 307", parked, StringComparison.Ordinal);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _receiver.DisposeAsync();
    }
}

/// <summary>An instance without <c>Notify__Url</c> does not swallow notifications another instance queued.</summary>
public sealed class NotifyWithoutUrlTests : PipelineHarness
{
    [Fact]
    public async Task A_notification_taken_by_an_instance_without_a_url_is_left_for_others_and_parked_at_the_limit_never_deleted()
    {
        await Services.GetRequiredService<WorkQueues>().SendNotifyAsync(new NotifyMessage(1, "evt-no-url-1", """{"type":"test"}"""), null);
        var parked = await NotifyPoison.WaitAsync(Services, TimeSpan.FromSeconds(60));
        Assert.Contains("evt-no-url-1", parked, StringComparison.Ordinal);
        Assert.Equal(LocalHost.HostJson.MaxDequeueCount, LocalHost.Invocations[FunctionNames.Notify]);
        Assert.Contains(Logs.Collector.GetSnapshot(), r => r.Message.Contains("Notify__Url is not set on this instance", StringComparison.Ordinal));
    }
}

/// <summary>The first message in <c>notify-poison</c>, waited for.</summary>
internal static class NotifyPoison
{
    public static async Task<string> WaitAsync(IServiceProvider services, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        var poison = services.GetRequiredService<WorkQueues>().Queue(QueueNames.Poison(QueueNames.Notify));
        while (!(await poison.ExistsAsync()).Value || (await poison.PeekMessagesAsync()).Value.Length == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "nothing reached notify-poison: the notification vanished or was never parked");
            await Task.Delay(100);
        }

        return (await poison.PeekMessagesAsync()).Value[0].Body.ToString();
    }
}
