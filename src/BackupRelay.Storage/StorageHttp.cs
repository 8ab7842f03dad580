using System.Net;
using System.Net.Sockets;
using System.Xml.Linq;
using BackupRelay.Storage.Auth;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace BackupRelay.Storage;

/// <summary>Retry settings for storage calls (transient 5xx, 408, timeouts, connection resets).</summary>
public sealed class StorageRetryOptions
{
    public int MaxRetryAttempts { get; set; } = 5;
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Timeout to receive the response headers of one attempt (bodies stream without a limit).</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(100);
}

/// <summary>The HTTP side of one storage account: auth, retries, error decoding.</summary>
public sealed partial class StorageHttp : IDisposable
{
    private readonly HttpClient _client;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;
    private readonly ILogger _logger;

    public StorageHttp(StorageConnection connection, TimeProvider time, ILogger logger, StorageRetryOptions? retry = null, HttpMessageHandler? transport = null)
    {
        _logger = logger;
        retry ??= new StorageRetryOptions();
        var auth = new StorageAuthHandler(connection, time)
        {
            InnerHandler = transport ?? new SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                MaxConnectionsPerServer = 256,
                AutomaticDecompression = DecompressionMethods.None,
            },
        };
        _client = new HttpClient(auth) { Timeout = Timeout.InfiniteTimeSpan };
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time };
        if (retry.MaxRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = retry.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = retry.BaseDelay,
                MaxDelay = retry.MaxDelay,
                ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome)),
                OnRetry = args =>
                {
                    Log.Retrying(_logger, args.Outcome.Result is { } r ? (int)r.StatusCode : 0,
                        args.Outcome.Exception?.GetType().Name ?? "", args.AttemptNumber + 1, args.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            });
        }

        _pipeline = builder.AddTimeout(retry.AttemptTimeout).Build();
    }

    /// <summary>
    /// Sends a request built fresh by <paramref name="build"/> for each attempt, and returns the
    /// response (success or not) once headers arrive. The caller disposes it.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> build, CancellationToken cancellationToken = default,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        try
        {
            return await _pipeline.ExecuteAsync(async ct =>
            {
                using var request = build();
                return await _client.SendAsync(request, completion, ct);
            }, cancellationToken);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new StorageException(null, "Timeout", "Storage did not answer in time.", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new StorageException(null, "ConnectionFailed", $"Storage could not be reached: {ex.HttpRequestError}.", ex);
        }
    }

    /// <summary>Throws a <see cref="StorageException"/> for a non-success response.</summary>
    public static async Task EnsureSuccessAsync(HttpResponseMessage response, string operation, CancellationToken cancellationToken = default)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        throw await ErrorAsync(response, operation, cancellationToken);
    }

    public static async Task<StorageException> ErrorAsync(HttpResponseMessage response, string operation, CancellationToken cancellationToken = default)
    {
        var code = response.Headers.TryGetValues("x-ms-error-code", out var values) ? values.FirstOrDefault() : null;
        string? message = null;
        try
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (body.TrimStart().StartsWith('<'))
            {
                var root = XDocument.Parse(body).Root;
                code ??= root?.Element("Code")?.Value;
                message = root?.Element("Message")?.Value?.Split('\n')[0];
            }
        }
        catch (Exception ex) when (ex is System.Xml.XmlException or HttpRequestException or IOException)
        {
            // The status and code are enough.
        }

        return new StorageException(response.StatusCode, code,
            $"{operation} failed: HTTP {(int)response.StatusCode} {code ?? response.ReasonPhrase}{(message is null ? "" : ": " + message)}");
    }

    private static bool IsTransient(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is HttpRequestException or TimeoutRejectedException or IOException or SocketException
        || (outcome.Result is { } r && (int)r.StatusCode is 408 or 500 or 502 or 503 or 504);

    public void Dispose() => _client.Dispose();

    private static partial class Log
    {
        [LoggerMessage(20, LogLevel.Warning, "Retrying storage call after status {Status} {Exception} (attempt {Attempt}) in {Delay}")]
        public static partial void Retrying(ILogger logger, int status, string exception, int attempt, TimeSpan delay);
    }
}
