namespace BackupRelay.Copying;

/// <summary>An open answer of the source: its body, disposed with the response.</summary>
internal sealed class SourceStream(HttpResponseMessage response, Stream stream) : IDisposable
{
    public Stream Stream { get; } = stream;

    public void Dispose()
    {
        Stream.Dispose();
        response.Dispose();
    }
}

/// <summary>The source failed in a way worth trying again (a fresh link, a later attempt).</summary>
internal sealed class SourceFailedException(string message) : Exception(message);
