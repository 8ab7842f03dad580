using System.Text.Json;
using System.Text.Json.Serialization;
using Polly.CircuitBreaker;
using Polly.RateLimiting;
using Polly.Timeout;
using Refit;

namespace BackupRelay.HuaweiCloud;

/// <summary>
/// Refit settings for the Huawei Cloud clients: every failure becomes a <see cref="HuaweiCloudException"/>
/// (kind, HTTP status, error code and message, request id, Retry-After) through Refit's own exception
/// factories, so callers branch on one type whatever went wrong — an error answer, a body in the wrong
/// shape, or no answer at all (Refit would wrap that in <see cref="ApiRequestException"/>).
/// </summary>
internal static class HuaweiCloudRefit
{
    /// <summary>The context's own options (naming, converters), no reflection fallback, and the project's error model.</summary>
    public static RefitSettings Settings(JsonSerializerContext json, TimeProvider time)
    {
        var settings = RefitSettings.ForJsonContext(json);
        settings.ExceptionFactory = async response => response.IsSuccessStatusCode
            ? null
            : await HuaweiCloudErrors.FromResponseAsync(response, time);
        settings.DeserializationExceptionFactory = (response, exception) => ValueTask.FromResult<Exception?>(
            new HuaweiCloudException(HuaweiCloudErrorKind.Invalid, response.StatusCode, null,
                $"The response of {response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath} is not in the expected shape: "
                + (exception is JsonException json ? json.Message : exception.GetType().Name),
                HuaweiCloudErrors.RequestId(response), null, exception));
        settings.TransportExceptionFactory = Transport;
        return settings;
    }

    /// <summary>No answer: the circuit is open, every attempt timed out, or the service could not be reached.</summary>
    private static Exception Transport(HttpRequestMessage request, Exception exception, CancellationToken cancellationToken)
    {
        var host = request.RequestUri?.Host;
        return exception switch
        {
            OperationCanceledException when cancellationToken.IsCancellationRequested => exception,
            HuaweiCloudException => exception,
            BrokenCircuitException broken => new HuaweiCloudException(HuaweiCloudErrorKind.Transient, null, null,
                $"{host} is failing; calls are paused for a while (circuit open).", null, broken.RetryAfter, exception),
            TimeoutRejectedException timeout => new HuaweiCloudException(HuaweiCloudErrorKind.Transient, null, null,
                $"{host} did not answer in time ({timeout.Timeout}).", null, null, exception),
            RateLimiterRejectedException limited => new HuaweiCloudException(HuaweiCloudErrorKind.Throttled, null, null,
                $"the client-side rate limit for {host} refused the call.", null, limited.RetryAfter, exception),
            HttpRequestException http => new HuaweiCloudException(HuaweiCloudErrorKind.Transient, null, null,
                $"{host} could not be reached: {http.HttpRequestError}.", null, null, exception),
            _ => exception,
        };
    }
}
