using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace BackupRelay.HuaweiCloud.Resilience;

/// <summary>
/// The resilience pipeline of one Huawei Cloud endpoint (IAM, GES, CSE) on the standard
/// <c>AddResilienceHandler</c> stack. The registry builds it once per endpoint, so circuit state and
/// the token bucket are shared by every client of that endpoint. Outer to inner: total timeout,
/// retry (jittered exponential backoff; 429 waits Retry-After), circuit breaker, rate limiter,
/// attempt timeout. What is the project's own is only the retry rules (<see cref="RetryModes"/>,
/// GES's engine errors reported as 400) and the 429 delay.
/// </summary>
public static partial class HuaweiCloudResilience
{
    public static IHttpClientBuilder AddHuaweiCloudResilience(this IHttpClientBuilder builder, string endpoint)
    {
        builder.AddResilienceHandler(endpoint, (pipeline, context) =>
        {
            var settings = context.ServiceProvider.GetRequiredService<IOptions<HuaweiCloudOptions>>().Value.Resilience;
            var time = context.ServiceProvider.GetRequiredService<TimeProvider>();
            var logger = context.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("BackupRelay.HuaweiCloud.Resilience");
            pipeline.TimeProvider = time;
            pipeline.AddTimeout(settings.TotalTimeout);
            if (settings.MaxRetryAttempts > 0)
            {
                pipeline.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
                {
                    MaxRetryAttempts = settings.MaxRetryAttempts,
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = settings.BaseDelay,
                    MaxDelay = settings.MaxDelay,
                    ShouldHandle = args => ShouldRetryAsync(args.Context, args.Outcome),
                    DelayGenerator = args => ValueTask.FromResult(ThrottleDelay(args.Outcome, settings.MaxDelay, time)),
                    OnRetry = args =>
                    {
                        var request = args.Context.GetRequestMessage();
                        // One line per failed attempt, naming the setting to check and the error; never a stack trace.
                        Log.Retrying(logger, endpoint, request?.Method.Method ?? "?", request?.RequestUri?.AbsolutePath ?? "?",
                            args.Outcome.Result is { } response ? (int)response.StatusCode : 0,
                            args.Outcome.Exception switch
                            {
                                null => "",
                                HttpRequestException http => $"{nameof(HttpRequestException)} {http.HttpRequestError}",
                                var other => other.GetType().Name,
                            },
                            args.AttemptNumber + 1, args.RetryDelay, Setting(endpoint));
                        return ValueTask.CompletedTask;
                    },
                });
            }

            // Permits come every 100 ms (at least one at a time), so the rate is smooth rather than a burst
            // each second: instances sharing a project's gateway budget then stay under it together.
            var permitsPerTenth = Math.Max(1, (int)Math.Ceiling(settings.RequestsPerSecond / 10));
            pipeline
                .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
                {
                    FailureRatio = settings.BreakFailureRatio,
                    MinimumThroughput = settings.BreakMinimumThroughput,
                    SamplingDuration = settings.BreakSamplingDuration,
                    BreakDuration = settings.BreakDuration,
                    ShouldHandle = args => ValueTask.FromResult(IsServerFailure(args.Outcome)),
                    OnOpened = args =>
                    {
                        Log.CircuitOpened(logger, endpoint, args.BreakDuration);
                        return ValueTask.CompletedTask;
                    },
                })

                // A fan-out over many graphs queues here instead of tripping the gateway's throttling.
                .AddRateLimiter(new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
                {
                    TokenLimit = permitsPerTenth,
                    TokensPerPeriod = permitsPerTenth,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(permitsPerTenth / settings.RequestsPerSecond),
                    QueueLimit = int.MaxValue,
                    QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                    AutoReplenishment = true,
                }))
                .AddTimeout(settings.AttemptTimeout);
        });
        return builder;
    }

    /// <summary>The app setting that names an endpoint (<c>HuaweiCloud__Endpoints__Ges</c>).</summary>
    private static string Setting(string endpoint) =>
        $"{HuaweiCloudOptions.SectionName}__Endpoints__{char.ToUpperInvariant(endpoint[0])}{endpoint[1..]}";

    private static async ValueTask<bool> ShouldRetryAsync(ResilienceContext context, Outcome<HttpResponseMessage> outcome)
    {
        var mode = RetryModes.For(context.GetRequestMessage());
        if (outcome.Exception is { } exception)
        {
            return mode == RetryMode.Always
                ? exception is HttpRequestException or TimeoutRejectedException or IOException
                : exception is HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionRefused } };
        }

        var response = outcome.Result!;
        var status = (int)response.StatusCode;
        if (status == 429)
        {
            return true;
        }

        if (mode == RetryMode.OnlyIfNotProcessed)
        {
            return false;
        }

        if (status is 408 or 500 or 502 or 503 or 504)
        {
            return true;
        }

        // GES reports an unavailable or failing engine as 400 with GES.7005 / GES.7006.
        if (status == 400)
        {
            await response.Content.LoadIntoBufferAsync();
            var (code, _, _) = HuaweiCloudErrors.Parse(await response.Content.ReadAsStringAsync());
            return code is "GES.7005" or "GES.7006";
        }

        return false;
    }

    private static bool IsServerFailure(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is HttpRequestException or TimeoutRejectedException or IOException
        || (outcome.Result is { } r && (int)r.StatusCode is 408 or >= 500);

    /// <summary>429: the server's Retry-After, else 2–5 s; other failures: the exponential backoff (null).</summary>
    private static TimeSpan? ThrottleDelay(Outcome<HttpResponseMessage> outcome, TimeSpan max, TimeProvider time)
    {
        if (outcome.Result is not { StatusCode: HttpStatusCode.TooManyRequests } response)
        {
            return null;
        }

        var delay = HuaweiCloudErrors.RetryAfter(response, time) ?? TimeSpan.FromMilliseconds(Random.Shared.Next(2000, 5000));
        return delay < max ? delay : max;
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Warning, "Retrying {Endpoint} {Method} {Path} after status {Status} {Exception} (attempt {Attempt}) in {Delay}; endpoint setting {Setting}")]
        public static partial void Retrying(ILogger logger, string endpoint, string method, string path, int status, string exception, int attempt, TimeSpan delay,
            string setting);

        [LoggerMessage(11, LogLevel.Error, "Circuit for {Endpoint} opened for {BreakDuration} after repeated failures")]
        public static partial void CircuitOpened(ILogger logger, string endpoint, TimeSpan breakDuration);
    }
}
