using System.Globalization;
using System.Net;
using System.Security;
using System.Text;
using System.Xml.Linq;

namespace BackupRelay.Storage.Queues;

/// <summary>How message text is put on the wire. Azure Functions' queue trigger expects base64 by default.</summary>
public enum QueueMessageEncoding
{
    Base64,
    None,
}

/// <summary>A received message: its ids, counts and times, and its text decoded.</summary>
public sealed record QueueMessage(
    string Id,
    string PopReceipt,
    long DequeueCount,
    DateTimeOffset? InsertionTime,
    DateTimeOffset? ExpirationTime,
    DateTimeOffset? NextVisibleTime,
    string RawText,
    string? Text);

public sealed record SentMessage(string Id, string PopReceipt, DateTimeOffset? NextVisibleTime);

/// <summary>An Azure Storage queue over REST.</summary>
public sealed class StorageQueue(StorageHttp http, Uri queueUri, string name, QueueMessageEncoding encoding = QueueMessageEncoding.Base64)
{
    /// <summary>Largest message the service takes, in UTF-8 bytes on the wire.</summary>
    public const int MaxMessageBytes = 64 * 1024;

    public string Name { get; } = name;
    public Uri Uri { get; } = queueUri;

    /// <summary>Creates the queue; false when it already existed.</summary>
    public async Task<bool> CreateIfNotExistsAsync(CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Put, Uri), cancellationToken);
        if (response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.NoContent)
        {
            return false;
        }

        await StorageHttp.EnsureSuccessAsync(response, $"Create queue {Name}", cancellationToken);
        return true;
    }

    /// <summary>Sends a message, invisible for <paramref name="visibilityDelay"/>, kept for <paramref name="timeToLive"/> (null: 7 days; negative: forever).</summary>
    public async Task<SentMessage> SendAsync(string text, TimeSpan? visibilityDelay = null, TimeSpan? timeToLive = null,
        CancellationToken cancellationToken = default)
    {
        var body = Envelope(text);
        var query = new StringBuilder("messages?");
        if (visibilityDelay is { } delay && delay > TimeSpan.Zero)
        {
            query.Append("visibilitytimeout=").Append(Seconds(delay)).Append('&');
        }

        if (timeToLive is { } ttl)
        {
            query.Append("messagettl=").Append(ttl < TimeSpan.Zero ? "-1" : Seconds(ttl)).Append('&');
        }

        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Post, Relative(query.ToString().TrimEnd('&', '?')))
        {
            Content = new StringContent(body, Encoding.UTF8, "application/xml"),
        }, cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Send to queue {Name}", cancellationToken);
        var message = (await ReadXmlAsync(response, cancellationToken)).Elements("QueueMessage").Single();
        return new SentMessage(message.Element("MessageId")!.Value, message.Element("PopReceipt")!.Value, Time(message, "TimeNextVisible"));
    }

    /// <summary>Receives up to <paramref name="maxMessages"/> (1-32), hiding them for <paramref name="visibilityTimeout"/>.</summary>
    public async Task<IReadOnlyList<QueueMessage>> ReceiveAsync(int maxMessages, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxMessages, 32);
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get,
            Relative($"messages?numofmessages={maxMessages}&visibilitytimeout={Math.Max(1, (int)visibilityTimeout.TotalSeconds)}")), cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Receive from queue {Name}", cancellationToken);
        return [.. (await ReadXmlAsync(response, cancellationToken)).Elements("QueueMessage").Select(ToMessage)];
    }

    /// <summary>Looks at up to <paramref name="maxMessages"/> visible messages without hiding them (no pop receipt).</summary>
    public async Task<IReadOnlyList<QueueMessage>> PeekAsync(int maxMessages = 1, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxMessages, 32);
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, Relative($"messages?peekonly=true&numofmessages={maxMessages}")), cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Peek queue {Name}", cancellationToken);
        return [.. (await ReadXmlAsync(response, cancellationToken)).Elements("QueueMessage").Select(ToMessage)];
    }

    /// <summary>Deletes a received message; false when it was already gone or its pop receipt is stale.</summary>
    public async Task<bool> DeleteAsync(string messageId, string popReceipt, CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Delete,
            Relative($"messages/{Uri.EscapeDataString(messageId)}?popreceipt={Uri.EscapeDataString(popReceipt)}")), cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        if (response.StatusCode == HttpStatusCode.BadRequest)
        {
            // The message came back and was received again: this receipt no longer owns it.
            var error = await StorageHttp.ErrorAsync(response, $"Delete message from queue {Name}", cancellationToken);
            return error.ErrorCode == "PopReceiptMismatch" ? false : throw error;
        }

        await StorageHttp.EnsureSuccessAsync(response, $"Delete message from queue {Name}", cancellationToken);
        return true;
    }

    /// <summary>Hides a received message for <paramref name="visibilityTimeout"/> more (optionally replacing its text); returns the new pop receipt.</summary>
    public async Task<SentMessage> UpdateVisibilityAsync(string messageId, string popReceipt, TimeSpan visibilityTimeout, string? newText = null,
        CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put,
                Relative($"messages/{Uri.EscapeDataString(messageId)}?popreceipt={Uri.EscapeDataString(popReceipt)}&visibilitytimeout={Seconds(visibilityTimeout)}"));
            if (newText is not null)
            {
                request.Content = new StringContent(Envelope(newText), Encoding.UTF8, "application/xml");
            }

            return request;
        }, cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Update message in queue {Name}", cancellationToken);
        var receipt = response.Headers.GetValues("x-ms-popreceipt").Single();
        var next = response.Headers.TryGetValues("x-ms-time-next-visible", out var v)
            && DateTimeOffset.TryParse(v.First(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : (DateTimeOffset?)null;
        return new SentMessage(messageId, receipt, next);
    }

    /// <summary>The service's approximate count of messages.</summary>
    public async Task<long> GetApproximateCountAsync(CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, Relative("?comp=metadata")), cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Read metadata of queue {Name}", cancellationToken);
        return long.Parse(response.Headers.GetValues("x-ms-approximate-messages-count").Single(), CultureInfo.InvariantCulture);
    }

    public async Task ClearAsync(CancellationToken cancellationToken = default)
    {
        using var response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Delete, Relative("messages")), cancellationToken);
        await StorageHttp.EnsureSuccessAsync(response, $"Clear queue {Name}", cancellationToken);
    }

    /// <summary>The message as it goes on the wire (base64 or plain); longer than <see cref="MaxMessageBytes"/> is refused.</summary>
    public string Encode(string text)
    {
        var wire = encoding == QueueMessageEncoding.Base64 ? Convert.ToBase64String(Encoding.UTF8.GetBytes(text)) : text;
        if (Encoding.UTF8.GetByteCount(wire) > MaxMessageBytes)
        {
            throw new ArgumentException($"The message is {Encoding.UTF8.GetByteCount(wire)} bytes on the wire; a queue message is at most {MaxMessageBytes}.", nameof(text));
        }

        return wire;
    }

    /// <summary>The text of a wire message, or null when it is not valid in this queue's encoding.</summary>
    public string? Decode(string wire)
    {
        if (encoding == QueueMessageEncoding.None)
        {
            return wire;
        }

        var buffer = new byte[wire.Length];
        if (!Convert.TryFromBase64String(wire, buffer, out var written))
        {
            return null;
        }

        try
        {
            return new UTF8Encoding(false, true).GetString(buffer, 0, written);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    private string Envelope(string text) =>
        "<QueueMessage><MessageText>" + SecurityElement.Escape(Encode(text)) + "</MessageText></QueueMessage>";

    private QueueMessage ToMessage(XElement m)
    {
        var raw = m.Element("MessageText")?.Value ?? "";
        return new QueueMessage(
            m.Element("MessageId")!.Value,
            m.Element("PopReceipt")?.Value ?? "",
            long.Parse(m.Element("DequeueCount")?.Value ?? "0", CultureInfo.InvariantCulture),
            Time(m, "InsertionTime"),
            Time(m, "ExpirationTime"),
            Time(m, "TimeNextVisible"),
            raw,
            Decode(raw));
    }

    private Uri Relative(string suffix) => new(Uri.AbsoluteUri.TrimEnd('/') + (suffix.StartsWith('?') ? "" : "/") + suffix);

    private static string Seconds(TimeSpan value) => ((long)Math.Ceiling(value.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    private static DateTimeOffset? Time(XElement element, string name) =>
        element.Element(name) is { } e && DateTimeOffset.TryParse(e.Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;

    private static async Task<XElement> ReadXmlAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        return (await XDocument.LoadAsync(stream, LoadOptions.None, cancellationToken)).Root!;
    }
}
