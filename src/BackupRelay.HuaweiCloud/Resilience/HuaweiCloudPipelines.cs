using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace BackupRelay.HuaweiCloud.Resilience;

/// <summary>
/// One Polly pipeline per endpoint (IAM, GES, CSE), kept for the process's life so circuit state
/// and the rate limit are shared by every client of that endpoint. Outer to inner: total timeout,
/// retry (jittered exponential backoff, Retry-After on 429), circuit breaker, rate limiter,
/// attempt timeout.
/// </summary>
public sealed partial class HuaweiCloudPipelines(IOptions<HuaweiCloudOptions> options, TimeProvider time, ILogger<HuaweiCloudPipelines> logger)
{
    private readonly ConcurrentDictionary<string, ResiliencePipeline<HttpResponseMessage>> _pipelines = new(StringComparer.Ordinal);

    public ResiliencePipeline<HttpResponseMessage> For(string endpoint) => _pipelines.GetOrAdd(endpoint, Build);

    private ResiliencePipeline<HttpResponseMessage> Build(string endpoint)
    {
        var settings = options.Value.Resilience;
        var permitsPerSecond = Math.Max(1, (int)Math.Ceiling(settings.RequestsPerSecond));
        var limiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = permitsPerSecond,
            TokensPerPeriod = permitsPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(permitsPerSecond / settings.RequestsPerSecond),
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });

        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            .AddTimeout(settings.TotalTimeout);
        if (settings.MaxRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = settings.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = settings.BaseDelay,
                MaxDelay = settings.MaxDelay,
                ShouldHandle = args => ShouldRetryAsync(args.Context, args.Outcome),
                DelayGenerator = args => ValueTask.FromResult(ThrottleDelay(args.Outcome, settings.MaxDelay)),
                OnRetry = args =>
                {
                    var request = args.Context.Properties.TryGetValue(RequestKey, out var r) ? r : null;
                    Log.Retrying(logger, endpoint, request?.Method.Method ?? "?", request?.RequestUri?.AbsolutePath ?? "?",
                        args.Outcome.Result is { } response ? (int)response.StatusCode : 0,
                        args.Outcome.Exception?.GetType().Name ?? "", args.AttemptNumber + 1, args.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            });
        }

        return builder
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
            .AddStrategy(_ => new RateLimitStrategy(limiter), new RateLimitStrategyOptions())
            .AddTimeout(settings.AttemptTimeout)
            .Build();
    }

    /// <summary>Carries the request into the pipeline's callbacks (for logging and the retry mode).</summary>
    public static readonly ResiliencePropertyKey<HttpRequestMessage> RequestKey = new("BackupRelay.Request");

    private static async ValueTask<bool> ShouldRetryAsync(ResilienceContext context, Outcome<HttpResponseMessage> outcome)
    {
        var mode = context.Properties.TryGetValue(RequestKey, out var request)
            && request.Options.TryGetValue(HuaweiCloudRequestOptions.Retry, out var m) ? m : RetryMode.Always;

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
    private TimeSpan? ThrottleDelay(Outcome<HttpResponseMessage> outcome, TimeSpan max)
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
        [LoggerMessage(10, LogLevel.Warning, "Retrying {Endpoint} {Method} {Path} after status {Status} {Exception} (attempt {Attempt}) in {Delay}")]
        public static partial void Retrying(ILogger logger, string endpoint, string method, string path, int status, string exception, int attempt, TimeSpan delay);

        [LoggerMessage(11, LogLevel.Error, "Circuit for {Endpoint} opened for {BreakDuration} after repeated failures")]
        public static partial void CircuitOpened(ILogger logger, string endpoint, TimeSpan breakDuration);
    }
}

/// <summary>
/// Waits for a permit of the endpoint's token bucket before each attempt, so a fan-out over many
/// graphs queues on the client instead of tripping the gateway's throttling.
/// </summary>
internal sealed class RateLimitStrategy(RateLimiter limiter) : ResilienceStrategy
{
    protected override async ValueTask<Outcome<TResult>> ExecuteCore<TResult, TState>(
        Func<ResilienceContext, TState, ValueTask<Outcome<TResult>>> callback, ResilienceContext context, TState state)
    {
        using var lease = await limiter.AcquireAsync(1, context.CancellationToken);
        if (!lease.IsAcquired)
        {
            return Outcome.FromException<TResult>(new HttpRequestException("Client-side rate limit queue is full."));
        }

        return await callback(context, state);
    }
}

internal sealed class RateLimitStrategyOptions : ResilienceStrategyOptions;

/// <summary>Runs each request through its endpoint's pipeline.</summary>
public sealed class HuaweiCloudResilienceHandler(ResiliencePipeline<HttpResponseMessage> pipeline) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(HuaweiCloudPipelines.RequestKey, request);
        try
        {
            var outcome = await pipeline.ExecuteOutcomeAsync(
                static async (ctx, state) =>
                {
                    try
                    {
                        return Outcome.FromResult(await state.Handler.BaseSendAsync(state.Request, ctx.CancellationToken));
                    }
                    catch (Exception ex)
                    {
                        return Outcome.FromException<HttpResponseMessage>(ex);
                    }
                },
                context,
                (Handler: this, Request: request));
            outcome.ThrowIfException();
            return outcome.Result!;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private Task<HttpResponseMessage> BaseSendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        base.SendAsync(request, cancellationToken);
}
