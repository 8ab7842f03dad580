using System.Net;
using System.Text;
using BackupRelay.HuaweiCloud;
using BackupRelay.HuaweiCloud.Ges;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace BackupRelay.Tests.Unit.HuaweiCloud;

/// <summary>
/// The GES client's resilience pipeline on a fake clock: waits happen only when the clock is moved,
/// so Retry-After and backoff are proven without sleeping.
/// </summary>
public sealed class ResiliencePipelineTests
{
    private sealed class Scripted(params Func<HttpResponseMessage?>[] answers) : HttpMessageHandler
    {
        public int Calls;

        /// <summary>An answer of null never comes: the attempt hangs until it is cancelled.</summary>
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var n = Interlocked.Increment(ref Calls);
            if (answers[Math.Min(n - 1, answers.Length - 1)]() is { } response)
            {
                return response;
            }

            await Task.Delay(Timeout.Infinite, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }
    }

    private static (GesClient Ges, FakeTimeProvider Clock, ServiceProvider Services) Client(Scripted transport)
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 2, 0, 0, TimeSpan.Zero));
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["HuaweiCloud:Region"] = "cn-north-4",
            ["HuaweiCloud:ProjectId"] = "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
            ["HuaweiCloud:Auth:AccessKey"] = "AKEXAMPLE",
            ["HuaweiCloud:Auth:SecretKey"] = "SKEXAMPLE",
            ["HuaweiCloud:Resilience:BaseDelay"] = "00:00:02",
            ["HuaweiCloud:Resilience:MaxDelay"] = "00:01:00",
            ["HuaweiCloud:Resilience:TotalTimeout"] = "01:00:00",
        }).Build();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(clock);
        services.AddHuaweiCloud(configuration);
        services.AddHttpClient(HuaweiCloudServiceCollectionExtensions.GesClientName).ConfigurePrimaryHttpMessageHandler(() => transport);
        var provider = services.BuildServiceProvider();
        return (provider.GetRequiredService<GesClient>(), clock, provider);
    }

    private static HttpResponseMessage Graph() => new(HttpStatusCode.OK)
    {
        Content = new StringContent("""{"graph":{"id":"g1","name":"orders"}}""", Encoding.UTF8, "application/json"),
    };

    private static HttpResponseMessage Throttled(int seconds)
    {
        var response = new HttpResponseMessage(HttpStatusCode.TooManyRequests)
        {
            Content = new StringContent("""{"error_code":"APIG.0308","error_msg":"The request is throttled."}""", Encoding.UTF8, "application/json"),
        };
        response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(seconds));
        return response;
    }

    private static async Task<bool> CompletesSoonAsync(Task task) => await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(5))) == task;

    private static async Task<bool> StaysPendingAsync(Task task) => await Task.WhenAny(task, Task.Delay(TimeSpan.FromMilliseconds(300))) != task;

    [Fact]
    public async Task A_throttled_call_waits_exactly_the_retry_after_on_the_clock()
    {
        var transport = new Scripted(() => Throttled(10), Graph);
        var (ges, clock, services) = Client(transport);
        await using var _ = services;

        var call = ges.GetGraphAsync("g1");
        Assert.True(await StaysPendingAsync(call));
        Assert.Equal(1, transport.Calls);

        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.True(await StaysPendingAsync(call), "retried before Retry-After passed");
        Assert.Equal(1, transport.Calls);

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await CompletesSoonAsync(call));
        Assert.Equal("orders", (await call).Name);
        Assert.Equal(2, transport.Calls);
    }

    [Fact]
    public async Task A_hanging_attempt_is_abandoned_at_the_attempt_timeout_and_retried()
    {
        var transport = new Scripted(() => null, Graph);
        var (ges, clock, services) = Client(transport);
        await using var _ = services;

        var call = ges.GetGraphAsync("g1");
        Assert.True(await StaysPendingAsync(call));
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.True(await StaysPendingAsync(call), "abandoned before the 30 s attempt timeout");
        Assert.Equal(1, transport.Calls);

        // Past the attempt timeout, then past the longest backoff: the second attempt answers.
        clock.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 60 && !call.IsCompleted; i++)
        {
            await Task.Delay(10);
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.True(await CompletesSoonAsync(call));
        Assert.Equal("orders", (await call).Name);
        Assert.Equal(2, transport.Calls);
    }

    [Fact]
    public async Task A_server_error_is_retried_after_the_backoff_and_the_final_error_keeps_its_code()
    {
        var transport = new Scripted(() => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable)
        {
            Content = new StringContent("""{"error_code":"APIG.0201","error_msg":"Backend unavailable."}""", Encoding.UTF8, "application/json"),
        });
        var (ges, clock, services) = Client(transport);
        await using var _ = services;

        var call = ges.GetGraphAsync("g1");
        for (var attempt = 1; attempt <= 4 && !call.IsCompleted; attempt++)
        {
            Assert.True(await StaysPendingAsync(call));
            clock.Advance(TimeSpan.FromMinutes(1));
        }

        Assert.True(await CompletesSoonAsync(call));
        var error = await Assert.ThrowsAsync<HuaweiCloudException>(() => call);
        Assert.Equal(HuaweiCloudErrorKind.Transient, error.Kind);
        Assert.Equal("APIG.0201", error.ErrorCode);
        Assert.Equal(5, transport.Calls); // the first attempt and four retries
    }
}
