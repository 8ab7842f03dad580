using System.Net;
using BackupRelay.Storage;
using BackupRelay.Storage.Blobs;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Unit.Storage;

/// <summary>Transient failures are retried with backoff; 412/409 are outcomes; errors carry the storage code.</summary>
public sealed class StorageRetryTests
{
    private sealed class Scripted(params Func<HttpRequestMessage, HttpResponseMessage>[] answers) : HttpMessageHandler
    {
        public List<HttpRequestMessage> Requests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Add(request);
            var answer = answers[Math.Min(Requests.Count - 1, answers.Length - 1)];
            return Task.FromResult(answer(request));
        }
    }

    private static (BlobContainer Container, Scripted Transport) Container(params Func<HttpRequestMessage, HttpResponseMessage>[] answers)
    {
        var transport = new Scripted(answers);
        var http = new StorageHttp(StorageConnection.Parse("UseDevelopmentStorage=true"), TimeProvider.System, NullLogger.Instance,
            new StorageRetryOptions { MaxRetryAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(5) }, transport);
        return (new BlobContainer(http, new Uri("http://127.0.0.1:10000/devstoreaccount1/c"), "c"), transport);
    }

    private static HttpResponseMessage Status(HttpStatusCode status, string? code = null)
    {
        var response = new HttpResponseMessage(status) { Content = new StringContent("") };
        if (code is not null)
        {
            response.Headers.TryAddWithoutValidation("x-ms-error-code", code);
        }

        response.Headers.ETag = new System.Net.Http.Headers.EntityTagHeaderValue("\"0x1\"");
        return response;
    }

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError)]
    [InlineData(HttpStatusCode.ServiceUnavailable)]
    [InlineData(HttpStatusCode.RequestTimeout)]
    public async Task Transient_statuses_are_retried(HttpStatusCode status)
    {
        var (container, transport) = Container(_ => Status(status, "ServerBusy"), _ => Status(HttpStatusCode.Created));
        var result = await container.PutBlobAsync("b", "x"u8.ToArray());
        Assert.True(result.Succeeded);
        Assert.Equal(2, transport.Requests.Count);
    }

    [Fact]
    public async Task Connection_resets_are_retried()
    {
        var calls = 0;
        var (container, transport) = Container(_ => ++calls == 1 ? throw new HttpRequestException("reset", new IOException()) : Status(HttpStatusCode.Created));
        Assert.True((await container.PutBlobAsync("b", "x"u8.ToArray())).Succeeded);
        Assert.Equal(2, transport.Requests.Count);
    }

    [Fact]
    public async Task Retries_are_bounded_and_the_error_carries_the_code()
    {
        var (container, transport) = Container(_ => Status(HttpStatusCode.ServiceUnavailable, "ServerBusy"));
        var error = await Assert.ThrowsAsync<StorageException>(() => container.PutBlobAsync("b", "x"u8.ToArray()));
        Assert.Equal("ServerBusy", error.ErrorCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, error.Status);
        Assert.Equal(4, transport.Requests.Count);
    }

    [Theory]
    [InlineData(HttpStatusCode.PreconditionFailed, WriteOutcome.PreconditionFailed)]
    [InlineData(HttpStatusCode.Conflict, WriteOutcome.Conflict)]
    public async Task Conditional_failures_are_outcomes_not_retried(HttpStatusCode status, WriteOutcome outcome)
    {
        var (container, transport) = Container(_ => Status(status, "ConditionNotMet"));
        Assert.Equal(outcome, (await container.PutBlobAsync("b", "x"u8.ToArray(), new BlobWriteOptions { IfMatch = "\"0x0\"" })).Outcome);
        Assert.Single(transport.Requests);
    }

    [Fact]
    public async Task Each_attempt_is_signed_afresh_with_date_and_version()
    {
        var (container, transport) = Container(_ => Status(HttpStatusCode.ServiceUnavailable), _ => Status(HttpStatusCode.Created));
        await container.PutBlobAsync("b", "x"u8.ToArray(), new BlobWriteOptions { IfNotExists = true });
        Assert.All(transport.Requests, r =>
        {
            Assert.StartsWith("SharedKey devstoreaccount1:", r.Headers.Authorization!.ToString(), StringComparison.Ordinal);
            Assert.True(r.Headers.Contains("x-ms-date"));
            Assert.Equal("2025-01-05", r.Headers.GetValues("x-ms-version").Single());
            Assert.Equal("*", r.Headers.GetValues("If-None-Match").Single());
        });
    }
}
