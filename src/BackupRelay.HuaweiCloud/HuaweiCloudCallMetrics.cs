using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;

namespace BackupRelay.HuaweiCloud;

/// <summary>
/// The one <c>backuprelay.huaweicloud.calls</c> instrument (a singleton): message handlers are created
/// anew each time the HTTP client factory rotates them, the instrument once.
/// </summary>
public sealed class HuaweiCloudCallCounter(IMeterFactory meters)
{
    public const string MeterName = "BackupRelay";

    public Counter<long> Calls { get; } = meters.Create(MeterName)
        .CreateCounter<long>("backuprelay.huaweicloud.calls", "{call}", "Calls to GES, CSE and IAM (each attempt), by service, operation, status and outcome.");
}

/// <summary>
/// Counts every call to GES, CSE and IAM as it goes on the wire (each attempt, so 429s and retries
/// show): <c>backuprelay.huaweicloud.calls</c> by service, operation (method and path with ids
/// replaced by <c>{id}</c>), status code and outcome (<c>ok</c>, <c>throttled</c>, <c>client_error</c>,
/// <c>server_error</c>, <c>failed</c> when no answer came).
/// </summary>
public sealed partial class HuaweiCloudCallMetrics(string service, HuaweiCloudCallCounter counter) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var operation = Operation(request);
        try
        {
            var response = await base.SendAsync(request, cancellationToken);
            var status = (int)response.StatusCode;
            var outcome = status switch
            {
                < 400 => "ok",
                429 => "throttled",
                < 500 => "client_error",
                _ => "server_error",
            };
            Record(operation, status, outcome);
            return response;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            Record(operation, null, "failed");
            throw;
        }
    }

    private void Record(string operation, int? status, string outcome) =>
        counter.Calls.Add(1,
            new KeyValuePair<string, object?>("backuprelay.huaweicloud.service", service),
            new KeyValuePair<string, object?>("backuprelay.huaweicloud.operation", operation),
            new KeyValuePair<string, object?>("http.response.status_code", status),
            new KeyValuePair<string, object?>("backuprelay.outcome", outcome));

    /// <summary><c>GET /v2/{id}/graphs/{id}/backups</c>: low-cardinality, and no id or query leaves the process.</summary>
    public static string Operation(HttpRequestMessage request)
    {
        var path = request.RequestUri?.IsAbsoluteUri == true ? request.RequestUri.AbsolutePath : request.RequestUri?.OriginalString.Split('?')[0] ?? "/";
        return request.Method.Method + " " + IdSegment().Replace(path, "/{id}");
    }

    /// <summary>
    /// A path segment of 8 or more characters holding a digit: project, graph, job, backup and engine
    /// ids all are; resource names and versions (<c>v2</c>, <c>v3</c>) are not.
    /// </summary>
    [GeneratedRegex(@"/(?=[^/]*[0-9])[^/]{8,}(?=/|$)")]
    private static partial Regex IdSegment();
}
