using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BackupRelay.HuaweiCloud.Resilience;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace BackupRelay.HuaweiCloud;

/// <summary>Sends one JSON call and turns every failure into a <see cref="HuaweiCloudException"/>.</summary>
public abstract class HuaweiCloudClientBase(HttpClient http, TimeProvider time)
{
    protected async Task<TResponse> SendAsync<TRequest, TResponse>(HttpMethod method, string relativeUri,
        TRequest? body, JsonTypeInfo<TRequest>? bodyType, JsonTypeInfo<TResponse> responseType, RetryMode retry,
        Action<HttpRequestMessage>? configure, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, relativeUri);
        request.Options.Set(HuaweiCloudRequestOptions.Retry, retry);
        request.Headers.Accept.ParseAdd("application/json");
        if (body is not null && bodyType is not null)
        {
            request.Content = JsonContent.Create(body, bodyType);
        }

        configure?.Invoke(request);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        catch (BrokenCircuitException ex)
        {
            throw new HuaweiCloudException(HuaweiCloudErrorKind.Transient, null, null,
                $"{http.BaseAddress?.Host} is failing; calls are paused for a while (circuit open).", null, ex.RetryAfter, ex);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new HuaweiCloudException(HuaweiCloudErrorKind.Transient, null, null,
                $"{http.BaseAddress?.Host} did not answer in time ({ex.Timeout}).", null, null, ex);
        }
        catch (HttpRequestException ex)
        {
            throw new HuaweiCloudException(HuaweiCloudErrorKind.Transient, null, null,
                $"{http.BaseAddress?.Host} could not be reached: {ex.HttpRequestError}.", null, null, ex);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw await HuaweiCloudErrors.FromResponseAsync(response, time, cancellationToken);
            }

            try
            {
                var value = await response.Content.ReadFromJsonAsync(responseType, cancellationToken);
                return value ?? throw new JsonException("The response body is empty.");
            }
            catch (JsonException ex)
            {
                throw new HuaweiCloudException(HuaweiCloudErrorKind.Invalid, response.StatusCode, null,
                    $"The response of {method} {request.RequestUri?.AbsolutePath} is not in the expected shape: {ex.Message}",
                    RequestId(response), null, ex);
            }
        }
    }

    private static string? RequestId(HttpResponseMessage response) =>
        response.Headers.TryGetValues("X-Request-Id", out var values) ? values.FirstOrDefault() : null;
}
