using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using BackupRelay.Storage.Auth;

namespace BackupRelay.Tests.Unit.Storage;

/// <summary>The Shared Key string to sign, pinned to the documented canonicalization (not to Azurite's leniency).</summary>
public sealed class SharedKeySignerTests
{
    [Theory]
    // The documentation's own examples of the canonicalized resource (2009-09-19 and later).
    [InlineData("http://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata", "/myaccount/mycontainer\ncomp:metadata\nrestype:container")]
    [InlineData("http://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=list&include=snapshots&include=metadata&include=uncommittedblobs",
        "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\nrestype:container")]
    [InlineData("https://myaccount-secondary.blob.core.windows.net/mycontainer/myblob", "/myaccount/mycontainer/myblob")]
    // Path stays encoded; query names lower-cased, values decoded.
    [InlineData("http://127.0.0.1:10000/devstoreaccount1/c/a%20b.bin?comp=block&blockid=YmxvY2s%3D", "/devstoreaccount1/devstoreaccount1/c/a%20b.bin\nblockid:YmxvY2s=\ncomp:block")]
    [InlineData("http://127.0.0.1:10001/devstoreaccount1/q/messages?NumOfMessages=5&visibilitytimeout=30", "/devstoreaccount1/devstoreaccount1/q/messages\nnumofmessages:5\nvisibilitytimeout:30")]
    public void Canonicalized_resource(string uri, string expected)
    {
        var account = uri.Contains("127.0.0.1", StringComparison.Ordinal) ? "devstoreaccount1" : "myaccount";
        Assert.Equal(expected, SharedKeySigner.CanonicalizedResource(new Uri(uri), account));
    }

    [Fact]
    public void Canonicalized_headers_are_lower_cased_sorted_trimmed_and_folded()
    {
        var headers = new Dictionary<string, string>
        {
            ["x-ms-version"] = "2025-01-05",
            ["X-MS-Date"] = "Sun, 22 Nov 2026 10:00:00 GMT",
            ["x-ms-meta-Name"] = "  a   b  ",
            ["Content-Type"] = "text/plain",
        };
        Assert.Equal("x-ms-date:Sun, 22 Nov 2026 10:00:00 GMT\nx-ms-meta-name:a b\nx-ms-version:2025-01-05\n",
            SharedKeySigner.CanonicalizedHeaders(headers));
    }

    [Fact]
    public void String_to_sign_has_the_documented_twelve_lines_then_headers_and_resource()
    {
        var request = new HttpRequestMessage(HttpMethod.Put, "http://127.0.0.1:10000/devstoreaccount1/c/blob?comp=block&blockid=AAAA")
        {
            Content = new ByteArrayContent(new byte[11]),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Content.Headers.ContentMD5 = new byte[16];
        request.Headers.TryAddWithoutValidation("If-Match", "\"0x8D\"");
        request.Headers.TryAddWithoutValidation("x-ms-date", "Sun, 22 Nov 2026 10:00:00 GMT");
        request.Headers.TryAddWithoutValidation("x-ms-version", "2025-01-05");

        var expected = string.Join('\n',
            "PUT",
            "", // Content-Encoding
            "", // Content-Language
            "11", // Content-Length
            "AAAAAAAAAAAAAAAAAAAAAA==", // Content-MD5
            "application/octet-stream",
            "", // Date (x-ms-date used)
            "", // If-Modified-Since
            "\"0x8D\"",
            "", // If-None-Match
            "", // If-Unmodified-Since
            "", // Range
            "x-ms-date:Sun, 22 Nov 2026 10:00:00 GMT",
            "x-ms-version:2025-01-05",
            "/devstoreaccount1/devstoreaccount1/c/blob\nblockid:AAAA\ncomp:block");
        Assert.Equal(expected, SharedKeySigner.StringToSign(request, "devstoreaccount1"));
    }

    [Fact]
    public void Zero_content_length_is_an_empty_line()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "https://a.queue.core.windows.net/q/messages") { Content = new ByteArrayContent([]) };
        Assert.StartsWith("GET\n\n\n\n", SharedKeySigner.StringToSign(request, "a"), StringComparison.Ordinal);
    }

    [Fact]
    public void Authorization_is_account_and_base64_hmac_of_the_string_to_sign()
    {
        var key = RandomNumberGenerator.GetBytes(64);
        var request = new HttpRequestMessage(HttpMethod.Get, "https://a.blob.core.windows.net/c?restype=container");
        request.Headers.TryAddWithoutValidation("x-ms-date", "Sun, 22 Nov 2026 10:00:00 GMT");
        var expected = Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(SharedKeySigner.StringToSign(request, "a"))));
        Assert.Equal("SharedKey a:" + expected, SharedKeySigner.Authorization(request, "a", key));
    }
}
