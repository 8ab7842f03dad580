using System.Diagnostics;
using System.Text;
using BackupRelay.Storage;
using BackupRelay.Storage.Auth;
using BackupRelay.Storage.Queues;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Integration.Storage;

public sealed class QueueTests : StorageHarness
{
    private async Task<StorageQueue> NewQueueAsync(QueueMessageEncoding encoding = QueueMessageEncoding.Base64)
    {
        var queue = Account.GetQueue(UniqueName("q"), encoding);
        Assert.True(await queue.CreateIfNotExistsAsync());
        return queue;
    }

    [Fact]
    public async Task Create_is_idempotent()
    {
        var queue = await NewQueueAsync();
        Assert.False(await queue.CreateIfNotExistsAsync());
    }

    [Fact]
    public async Task Send_receive_delete_round_trip_with_base64_on_the_wire()
    {
        var queue = await NewQueueAsync();
        const string text = """{"runId":"r1","graph":"g<&>\u00fc"}""";
        var sent = await queue.SendAsync(text);
        var peeked = Assert.Single(await queue.PeekAsync(5));
        Assert.Equal(sent.Id, peeked.Id);
        Assert.Equal(Convert.ToBase64String(Encoding.UTF8.GetBytes(text)), peeked.RawText);

        // A reader that expects base64 (the Functions queue trigger) decodes it to the same text.
        Assert.Equal(text, Encoding.UTF8.GetString(Convert.FromBase64String(peeked.RawText)));

        var received = Assert.Single(await queue.ReceiveAsync(10, TimeSpan.FromSeconds(30)));
        Assert.Equal(text, received.Text);
        Assert.Equal(1, received.DequeueCount);
        Assert.Empty(await queue.ReceiveAsync(10, TimeSpan.FromSeconds(30)));
        Assert.True(await queue.DeleteAsync(received.Id, received.PopReceipt));
        Assert.False(await queue.DeleteAsync(received.Id, received.PopReceipt));
        Assert.Equal(0, await queue.GetApproximateCountAsync());
    }

    [Fact]
    public async Task Initial_visibility_delay_hides_a_message_until_it_passes()
    {
        var queue = await NewQueueAsync();
        var watch = Stopwatch.StartNew();
        await queue.SendAsync("later", visibilityDelay: TimeSpan.FromSeconds(2));
        Assert.Empty(await queue.ReceiveAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(1, await queue.GetApproximateCountAsync());
        var received = await ReceiveWithinAsync(queue, TimeSpan.FromSeconds(10));
        Assert.Equal("later", received.Text);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1.5), $"visible after {watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task Dequeue_count_grows_each_time_a_message_comes_back()
    {
        var queue = await NewQueueAsync();
        await queue.SendAsync("retry me");
        var first = Assert.Single(await queue.ReceiveAsync(1, TimeSpan.FromSeconds(1)));
        Assert.Equal(1, first.DequeueCount);
        var second = await ReceiveWithinAsync(queue, TimeSpan.FromSeconds(10));
        Assert.Equal(2, second.DequeueCount);
        Assert.False(await queue.DeleteAsync(first.Id, first.PopReceipt));
        Assert.True(await queue.DeleteAsync(second.Id, second.PopReceipt));
    }

    [Fact]
    public async Task Update_visibility_returns_a_new_receipt_and_can_replace_the_text()
    {
        var queue = await NewQueueAsync();
        await queue.SendAsync("v1");
        var received = Assert.Single(await queue.ReceiveAsync(1, TimeSpan.FromSeconds(30)));
        var updated = await queue.UpdateVisibilityAsync(received.Id, received.PopReceipt, TimeSpan.Zero, "v2");
        Assert.NotEqual(received.PopReceipt, updated.PopReceipt);
        var again = Assert.Single(await queue.ReceiveAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal("v2", again.Text);
        Assert.Equal(2, again.DequeueCount);
    }

    [Fact]
    public async Task Time_to_live_sets_the_expiry()
    {
        var queue = await NewQueueAsync();
        await queue.SendAsync("short", timeToLive: TimeSpan.FromMinutes(5));
        var message = Assert.Single(await queue.PeekAsync());
        Assert.InRange((message.ExpirationTime!.Value - message.InsertionTime!.Value).TotalSeconds, 299, 301);
    }

    [Fact]
    public async Task Batches_and_counts()
    {
        var queue = await NewQueueAsync();
        await Task.WhenAll(Enumerable.Range(0, 12).Select(i => queue.SendAsync($"m{i}")));
        Assert.Equal(12, await queue.GetApproximateCountAsync());
        var batch = await queue.ReceiveAsync(32, TimeSpan.FromSeconds(30));
        Assert.Equal(12, batch.Count);
        Assert.Equal(12, batch.Select(m => m.Text).Distinct().Count());
        await queue.ClearAsync();
        Assert.Equal(0, await queue.GetApproximateCountAsync());
    }

    [Fact]
    public async Task A_message_that_is_not_base64_is_received_with_no_text()
    {
        var plain = await NewQueueAsync(QueueMessageEncoding.None);
        await plain.SendAsync("{not base64}");
        var reader = Account.GetQueue(plain.Name);
        var message = Assert.Single(await reader.ReceiveAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Null(message.Text);
        Assert.Equal("{not base64}", message.RawText);
    }

    [Fact]
    public void Oversized_messages_are_refused_before_sending()
    {
        var queue = Account.GetQueue("never-created");
        Assert.Throws<ArgumentException>(() => queue.Encode(new string('x', 50_000)));
    }

    [Fact]
    public async Task Sas_connection_works_for_queues()
    {
        var sas = AccountSas.Create("devstoreaccount1", StorageConnection.DevelopmentAccountKey, DateTimeOffset.UtcNow.AddHours(1));
        using var account = new StorageAccount(StorageConnection.Parse(
            $"QueueEndpoint=http://127.0.0.1:{Azurite.QueuePort}/devstoreaccount1;BlobEndpoint=http://127.0.0.1:{Azurite.BlobPort}/devstoreaccount1;SharedAccessSignature={sas}"),
            TimeProvider.System, NullLogger.Instance);
        var queue = account.GetQueue(UniqueName("sas"));
        Assert.True(await queue.CreateIfNotExistsAsync());
        await queue.SendAsync("via sas");
        Assert.Equal("via sas", Assert.Single(await queue.ReceiveAsync(1, TimeSpan.FromSeconds(5))).Text);
    }

    [Fact]
    public async Task Wrong_account_key_is_refused_with_the_storage_error_code()
    {
        using var account = new StorageAccount(StorageConnection.Parse(
            $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={Convert.ToBase64String(new byte[64])};QueueEndpoint=http://127.0.0.1:{Azurite.QueuePort}/devstoreaccount1"),
            TimeProvider.System, NullLogger.Instance);
        var error = await Assert.ThrowsAsync<StorageException>(() => account.GetQueue(UniqueName("bad")).CreateIfNotExistsAsync());
        Assert.Equal(403, (int)error.Status!);
        Assert.Equal("AuthenticationFailed", error.ErrorCode);
    }

    private static async Task<QueueMessage> ReceiveWithinAsync(StorageQueue queue, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < limit)
        {
            if ((await queue.ReceiveAsync(1, TimeSpan.FromSeconds(30))).FirstOrDefault() is { } message)
            {
                return message;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("No message became visible.");
    }
}
