using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Storage.Blobs;
using BackupRelay.Storage;

namespace BackupRelay.Restores;

/// <summary>
/// One file's multipart upload as far as it got: the OBS upload id, the part size, and every part OBS
/// acknowledged (with the part's MD5, so a resumed upload checks the bytes it would have sent against
/// it before skipping the part). Kept beside the run records, not in OBS: ListParts is not offered by
/// every S3-compatible store, and the record survives the process.
/// </summary>
public sealed class UploadProgress
{
    public string UploadId { get; set; } = "";
    public int PartSize { get; set; }
    public List<UploadedPart> Parts { get; set; } = [];
}

public sealed record UploadedPart(int Number, long Length, string ETag, string Md5Hex);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(UploadProgress))]
internal sealed partial class UploadProgressJson : JsonSerializerContext;

/// <summary><c>backuprelay-runs/uploads/{run}/{file}.json</c>: read, replace, delete.</summary>
public sealed class UploadProgressStore(BlobContainerClient container)
{
    private static string Name(string runId, string file) => $"uploads/{runId}/{file}.json";

    public async Task<UploadProgress?> GetAsync(string runId, string file, CancellationToken cancellationToken)
    {
        try
        {
            var content = (await container.GetBlobClient(Name(runId, file)).DownloadContentAsync(cancellationToken)).Value.Content;
            return JsonSerializer.Deserialize(content.ToMemory().Span, UploadProgressJson.Default.UploadProgress);
        }
        catch (RequestFailedException ex) when (StorageErrors.IsNotFound(ex))
        {
            return null;
        }
        catch (JsonException)
        {
            // Unreadable: treated as absent, so the upload starts again rather than never.
            return null;
        }
    }

    public Task SaveAsync(string runId, string file, UploadProgress progress, CancellationToken cancellationToken) =>
        container.GetBlobClient(Name(runId, file)).UploadAsync(
            BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(progress, UploadProgressJson.Default.UploadProgress)), overwrite: true, cancellationToken);

    public Task DeleteAsync(string runId, string file, CancellationToken cancellationToken) =>
        container.GetBlobClient(Name(runId, file)).DeleteIfExistsAsync(cancellationToken: cancellationToken);
}
