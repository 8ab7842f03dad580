using System.Text.Json;

namespace BackupRelay.Host;

/// <summary>Reads a Functions <c>local.settings.json</c> (<c>{"Values": {"A__B": "x"}}</c>) into configuration keys (<c>A:B</c>).</summary>
internal static class LocalSettings
{
    public static IEnumerable<KeyValuePair<string, string?>> Read(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        if (!document.RootElement.TryGetProperty("Values", out var values))
        {
            yield break;
        }

        foreach (var property in values.EnumerateObject())
        {
            yield return new(property.Name.Replace("__", ":", StringComparison.Ordinal),
                property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText());
        }
    }
}
