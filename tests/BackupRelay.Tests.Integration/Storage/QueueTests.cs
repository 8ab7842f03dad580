using System.Diagnostics;
using System.Text;
using Azure;
using Azure.Storage;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Azure.Storage.Sas;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Storage;

/// <summary>
/// The SDK queue client as the project configures it (base64, pinned service version), against an Azurite
/// that checks the API version. (A message that is not base64 is the Functions host's to move:
/// PipelineTests.A_message_that_is_not_base64_is_parked_with_its_text_and_the_rest_of_its_batch_runs.)
/// </summary>
public sealed class QueueTests : StorageHarness
{
    protected override StorageClientSettings Settings() => new() { Delay = TimeSpan.FromMilliseconds(20) };

    private async Task<QueueClient> NewQueueAsync()
    {
        var queue = Account.GetQueue(UniqueName("q"));
        Assert.NotNull((await queue.CreateIfNotExistsAsync()));
        return queue;
    }

    [Fact]
    public async Task Messages_are_base64_on_the_wire_as_the_Functions_queue_trigger_expects()
    {
        var queue = await NewQueueAsync();
        const string text = """{"runId":"r1","graph":"g<&>\u00fc"}""";
        await queue.SendMessageAsync(text);

        // What another reader sees on the wire: base64 of the UTF-8 text.
        var peeked = Assert.Single((await PlainQueue(queue.Name).PeekMessagesAsync(5)).Value);
        Assert.Equal(Convert.ToBase64String(Encoding.UTF8.GetBytes(text)), peeked.Body.ToString());

        var received = Assert.Single((await queue.ReceiveMessagesAsync(10, TimeSpan.FromSeconds(30))).Value);
        Assert.Equal(text, received.Body.ToString());
        Assert.Equal(1, received.DequeueCount);
        Assert.Empty((await queue.ReceiveMessagesAsync(10, TimeSpan.FromSeconds(30))).Value);
        await queue.DeleteMessageAsync(received.MessageId, received.PopReceipt);
        Assert.Equal(0, (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
    }

    [Fact]
    public async Task Initial_visibility_delay_hides_a_message_until_it_passes()
    {
        var queue = await NewQueueAsync();
        var watch = Stopwatch.StartNew();
        await queue.SendMessageAsync("later", visibilityTimeout: TimeSpan.FromSeconds(2));
        Assert.Empty((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30))).Value);
        Assert.Equal(1, (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
        var received = await ReceiveWithinAsync(queue, TimeSpan.FromSeconds(10));
        Assert.Equal("later", received.Body.ToString());
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1.5), $"visible after {watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task Dequeue_count_grows_each_time_a_message_comes_back_and_a_stale_receipt_is_refused()
    {
        var queue = await NewQueueAsync();
        await queue.SendMessageAsync("retry me");
        var first = Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(1))).Value);
        Assert.Equal(1, first.DequeueCount);
        var second = await ReceiveWithinAsync(queue, TimeSpan.FromSeconds(10));
        Assert.Equal(2, second.DequeueCount);
        var stale = await Assert.ThrowsAsync<RequestFailedException>(() => queue.DeleteMessageAsync(first.MessageId, first.PopReceipt));
        Assert.Contains(stale.Status, new[] { 400, 404 });
        await queue.DeleteMessageAsync(second.MessageId, second.PopReceipt);
    }

    [Fact]
    public async Task Updating_visibility_without_text_keeps_the_text_and_gives_a_new_receipt()
    {
        var queue = await NewQueueAsync();
        await queue.SendMessageAsync("v1");
        var received = Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30))).Value);
        var updated = await queue.UpdateMessageAsync(received.MessageId, received.PopReceipt, visibilityTimeout: TimeSpan.Zero);
        Assert.NotEqual(received.PopReceipt, updated.Value.PopReceipt);
        var again = Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30))).Value);
        Assert.Equal("v1", again.Body.ToString());
        Assert.Equal(2, again.DequeueCount);
    }

    [Fact]
    public async Task Messages_sent_without_expiry_never_expire()
    {
        var queue = await NewQueueAsync();
        await queue.SendMessageAsync("kept", timeToLive: TimeSpan.FromSeconds(-1));
        var message = Assert.Single((await queue.PeekMessagesAsync()).Value);
        Assert.True(message.ExpiresOn > DateTimeOffset.UtcNow.AddYears(100), $"expires {message.ExpiresOn}");
    }

    [Fact]
    public async Task Sas_connection_works_for_queues()
    {
        var sas = new AccountSasBuilder(AccountSasPermissions.All, DateTimeOffset.UtcNow.AddHours(1), AccountSasServices.Queues, AccountSasResourceTypes.All)
            .ToSasQueryParameters(new StorageSharedKeyCredential(StorageConnection.DevelopmentAccountName, StorageConnection.DevelopmentAccountKey));
        var account = StorageAccount.FromConnectionString(
            $"QueueEndpoint=http://127.0.0.1:{Azurite.QueuePort}/devstoreaccount1;SharedAccessSignature={sas}");
        var queue = account.GetQueue(UniqueName("sas"));
        Assert.NotNull(await queue.CreateIfNotExistsAsync());
        await queue.SendMessageAsync("via sas");
        Assert.Equal("via sas", Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(5))).Value).Body.ToString());
    }

    [Fact]
    public async Task Wrong_account_key_is_refused_with_the_storage_error_code_and_no_key_in_the_description()
    {
        var key = Convert.ToBase64String(Enumerable.Range(0, 64).Select(i => (byte)(i * 7)).ToArray());
        var account = StorageAccount.FromConnectionString(
            $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};QueueEndpoint=http://127.0.0.1:{Azurite.QueuePort}/devstoreaccount1",
            new StorageClientSettings { MaxRetries = 0 });
        var error = await Assert.ThrowsAsync<RequestFailedException>(() => account.GetQueue(UniqueName("bad")).CreateIfNotExistsAsync());
        Assert.Equal(403, error.Status);
        Assert.Equal("AuthenticationFailed", error.ErrorCode);
        Assert.Equal("HTTP 403 AuthenticationFailed", StorageErrors.Describe(error));
        Assert.DoesNotContain(key, error.ToString());
    }

    private static async Task<QueueMessage> ReceiveWithinAsync(QueueClient queue, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < limit)
        {
            if ((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30))).Value.FirstOrDefault() is { } message)
            {
                return message;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("No message became visible.");
    }
}
