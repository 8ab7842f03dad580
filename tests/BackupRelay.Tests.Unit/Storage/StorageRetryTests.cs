using System.Net;
using Azure;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs.Models;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Unit.Storage;

/// <summary>
/// The SDK clients as the project configures them: transient failures retried a bounded number of
/// times, 412/409 turned into outcomes and not retried, the pinned service version on every request.
/// (The SDK's retry delays run on the real clock; the delays here are a millisecond.)
/// </summary>
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

    private static (StorageAccount Account, Scripted Transport) Account(params Func<HttpRequestMessage, HttpResponseMessage>[] answers)
    {
        var transport = new Scripted(answers);
        var account = StorageAccount.FromConnectionString("UseDevelopmentStorage=true", new StorageClientSettings
        {
            MaxRetries = 3,
            Delay = TimeSpan.FromMilliseconds(1),
            MaxDelay = TimeSpan.FromMilliseconds(5),
            Transport = new HttpClientTransport(transport),
        });
        return (account, transport);
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

    private static Task<WriteResult> PutAsync(StorageAccount account, BlobRequestConditions? conditions = null) =>
        BlobWrites.UploadAsync(account.GetContainer("runs").GetBlobClient("b"), BinaryData.FromString("x"), new BlobUploadOptions { Conditions = conditions });

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError)]
    [InlineData(HttpStatusCode.ServiceUnavailable)]
    [InlineData(HttpStatusCode.RequestTimeout)]
    public async Task Transient_statuses_are_retried(HttpStatusCode status)
    {
        var (account, transport) = Account(_ => Status(status, "ServerBusy"), _ => Status(HttpStatusCode.Created));
        Assert.True((await PutAsync(account)).Succeeded);
        Assert.Equal(2, transport.Requests.Count);
    }

    [Fact]
    public async Task Connection_resets_are_retried()
    {
        var calls = 0;
        var (account, transport) = Account(_ => ++calls == 1 ? throw new HttpRequestException("reset", new IOException()) : Status(HttpStatusCode.Created));
        Assert.True((await PutAsync(account)).Succeeded);
        Assert.Equal(2, transport.Requests.Count);
    }

    [Fact]
    public async Task Retries_are_bounded_and_the_error_carries_the_code()
    {
        var (account, transport) = Account(_ => Status(HttpStatusCode.ServiceUnavailable, "ServerBusy"));
        var error = await Assert.ThrowsAsync<RequestFailedException>(() => PutAsync(account));
        Assert.Equal("ServerBusy", StorageErrors.ErrorCode(error));
        Assert.Equal(503, error.Status);
        Assert.Equal("HTTP 503 ServerBusy", StorageErrors.Describe(error));
        Assert.Equal(4, transport.Requests.Count);
    }

    [Theory]
    [InlineData(HttpStatusCode.PreconditionFailed, WriteOutcome.PreconditionFailed)]
    [InlineData(HttpStatusCode.Conflict, WriteOutcome.Conflict)]
    public async Task Conditional_failures_are_outcomes_not_retried(HttpStatusCode status, WriteOutcome outcome)
    {
        var (account, transport) = Account(_ => Status(status, "ConditionNotMet"));
        Assert.Equal(outcome, (await PutAsync(account, BlobWrites.IfMatch(new ETag("\"0x0\"")))).Outcome);
        Assert.Single(transport.Requests);
    }

    [Fact]
    public async Task Every_attempt_names_the_pinned_service_version_and_its_condition()
    {
        var (account, transport) = Account(_ => Status(HttpStatusCode.ServiceUnavailable), _ => Status(HttpStatusCode.Created));
        await PutAsync(account, BlobWrites.IfNotExists());
        Assert.Equal(2, transport.Requests.Count);
        Assert.All(transport.Requests, r =>
        {
            Assert.StartsWith("SharedKey devstoreaccount1:", r.Headers.Authorization!.ToString(), StringComparison.Ordinal);
            Assert.Equal("2026-06-06", r.Headers.GetValues("x-ms-version").Single());
            Assert.Equal("*", r.Headers.GetValues("If-None-Match").Single());
        });
    }
}
