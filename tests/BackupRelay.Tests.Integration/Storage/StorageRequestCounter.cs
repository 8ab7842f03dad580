using System.Collections.Concurrent;

namespace BackupRelay.Tests.Integration.Storage;

/// <summary>
/// Counts what a storage client sends (put under a client as its transport's handler): each request as
/// "METHOD path", with " comp=list" for listings — the run store's cost, as the server sees it.
/// </summary>
public sealed class StorageRequestCounter : DelegatingHandler
{
    public StorageRequestCounter() => InnerHandler = new SocketsHttpHandler();

    public ConcurrentBag<string> Requests { get; } = [];

    /// <summary>Reads of run records (<c>runs/{id}.json</c>).</summary>
    public int RecordReads => Requests.Count(r => r.StartsWith("GET ", StringComparison.Ordinal) && r.Contains("/runs/", StringComparison.Ordinal) && r.EndsWith(".json", StringComparison.Ordinal));

    public int Listings => Requests.Count(r => r.Contains("comp=list", StringComparison.Ordinal));

    public void Reset() => Requests.Clear();

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Requests.Add($"{request.Method} {request.RequestUri!.AbsolutePath}{(request.RequestUri.Query.Contains("comp=list", StringComparison.Ordinal) ? " comp=list" : "")}");
        return base.SendAsync(request, cancellationToken);
    }
}
