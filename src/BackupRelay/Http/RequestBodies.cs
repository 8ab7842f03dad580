using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace BackupRelay.Http;

/// <summary>
/// A request body as a typed record, bound by <see cref="HttpApi.ReadBodyAsync{T}"/> once the body's size and signature were
/// checked. The binding is strict (a field the record does not have, a field given twice or of the wrong JSON type is a
/// 400 naming that field); <see cref="Validate"/> then checks what JSON types cannot say (required, lengths, formats).
/// </summary>
public interface IRequestBody
{
    /// <summary>Adds one error per field that is missing or out of range, keyed by the field's JSON name.</summary>
    void Validate(Dictionary<string, string[]> errors);
}

/// <summary>The body of <c>POST /api/graphs/{graphId}/backups</c>: nothing to say (an empty body or <c>{}</c>).</summary>
public sealed record BackupNowBody : IRequestBody
{
    public void Validate(Dictionary<string, string[]> errors)
    {
    }
}

/// <summary>The body of <c>POST /api/graphs/{graphId}/import</c>.</summary>
/// <param name="ImportPath">The OBS path GES imports from (<c>obs://bucket/path/</c> or <c>bucket/path/</c>); required.</param>
public sealed record ImportBody([property: JsonPropertyName("import_path")] string? ImportPath) : IRequestBody
{
    /// <summary>The path as GES takes it (<c>bucket/path/</c>); valid once <see cref="Validate"/> found no error.</summary>
    public string ObsPath => HttpApi.TryObsPath(ImportPath ?? "", out var path) ? path! : "";

    public void Validate(Dictionary<string, string[]> errors)
    {
        if (ImportPath is null)
        {
            errors["import_path"] = ["import_path is required: an OBS path such as obs://bucket/path/ or bucket/path/."];
        }
        else if (HttpApi.CheckLength(ImportPath, "import_path", 1024, errors) && !HttpApi.TryObsPath(ImportPath, out _))
        {
            errors["import_path"] = ["import_path must be an OBS path: obs://bucket/path/ or bucket/path/ (bucket: 3-63 of a-z, 0-9, '-', '.')."];
        }
    }
}

/// <summary>The body of <c>POST /api/engines/{engineId}/backups/{backupId}/restore</c>; both fields optional.</summary>
/// <param name="Name">The CSE restore's name (1-64 characters; a name is made up when absent).</param>
/// <param name="Description">Its description (1-255 characters).</param>
public sealed record EngineRestoreBody(string? Name, string? Description) : IRequestBody
{
    public void Validate(Dictionary<string, string[]> errors)
    {
        HttpApi.CheckLength(Name, "name", 64, errors);
        HttpApi.CheckLength(Description, "description", 255, errors);
    }
}

/// <summary>The body of <c>POST /api/graphs/{graphId}/restores</c> (bring a copy back).</summary>
/// <param name="BackupId">The GES backup id of the copy (its folder in the destination); required.</param>
/// <param name="SourceGraph">The graph whose copy it is, when not the target's own.</param>
/// <param name="ObsPath">Where in OBS to upload it (default: the configured bucket and prefix).</param>
/// <param name="AcceptUnverified">Restore a copy whose files were not all verified.</param>
/// <param name="AcceptIncomplete">Restore a copy that misses files.</param>
public sealed record RestoreFromCopyBody(string? BackupId, string? SourceGraph, string? ObsPath, bool? AcceptUnverified, bool? AcceptIncomplete)
    : IRequestBody
{
    /// <summary><see cref="ObsPath"/> as GES takes it (<c>bucket/prefix/</c>, one trailing slash); null when not given.</summary>
    public string? NormalizedObsPath => ObsPath is not null && HttpApi.TryObsPath(ObsPath, out var path)
        ? (path!.EndsWith('/') ? path : path + "/")
        : null;

    public void Validate(Dictionary<string, string[]> errors)
    {
        if (BackupId is null)
        {
            errors["backupId"] = ["backupId is required: the GES backup id of the copy (its folder in the destination)."];
        }
        else if (HttpApi.CheckLength(BackupId, "backupId", 128, errors))
        {
            HttpApi.CheckId(BackupId, "backupId", errors);
        }

        if (SourceGraph is not null && HttpApi.CheckLength(SourceGraph, "sourceGraph", 128, errors))
        {
            HttpApi.CheckId(SourceGraph, "sourceGraph", errors);
        }

        if (ObsPath is not null && HttpApi.CheckLength(ObsPath, "obsPath", 1024, errors) && !HttpApi.TryObsPath(ObsPath, out _))
        {
            errors["obsPath"] = ["obsPath must be an OBS path: obs://bucket/prefix/ or bucket/prefix/ (bucket: 3-63 of a-z, 0-9, '-', '.')."];
        }
    }
}

/// <summary>
/// The request bodies' JSON contract: camelCase names matched exactly (no case folding), and a field the record does
/// not have refused rather than ignored — a misspelt <c>acceptUnverifed</c> must not silently mean false.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(BackupNowBody))]
[JsonSerializable(typeof(ImportBody))]
[JsonSerializable(typeof(EngineRestoreBody))]
[JsonSerializable(typeof(RestoreFromCopyBody))]
public sealed partial class RequestBodyJson : JsonSerializerContext;

/// <summary>Binds a body to its record and turns what <see cref="JsonSerializer"/> refused into an error naming the field.</summary>
public static class RequestBinding
{
    /// <summary>
    /// The body bound and validated, or null with the errors added (<c>body</c> when the body as a whole is wrong).
    /// An empty body binds as <c>{}</c>.
    /// </summary>
    public static T? Bind<T>(ReadOnlySpan<byte> bytes, JsonTypeInfo<T> type, Dictionary<string, string[]> errors)
        where T : class, IRequestBody
    {
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            errors["body"] = ["The body must be UTF-8 JSON."];
            return null;
        }

        T? body;
        try
        {
            body = JsonSerializer.Deserialize(bytes.IsEmpty ? "{}"u8 : bytes, type);
        }
        catch (JsonException ex)
        {
            var (field, message) = Explain(ex, type);
            errors[field] = [message];
            return null;
        }

        if (body is null)
        {
            errors["body"] = ["The body must be a JSON object."];
            return null;
        }

        body.Validate(errors);
        return body;
    }

    /// <summary>The field a <see cref="JsonException"/> is about (from its JSON path) and what the caller should send instead.</summary>
    private static (string Field, string Message) Explain(JsonException ex, JsonTypeInfo type)
    {
        var field = FieldOf(ex.Path);
        var names = string.Join(", ", type.Properties.Select(p => p.Name));
        if (field is null)
        {
            return ex.Message.Contains("could not be converted", StringComparison.Ordinal)
                ? ("body", "The body must be a JSON object.")
                : ("body", $"The body is not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}).");
        }

        if (ex.Message.Contains("uplicate", StringComparison.Ordinal))
        {
            return (field, $"{field} is given twice: give each field once.");
        }

        var property = type.Properties.FirstOrDefault(p => p.Name == field);
        if (property is null)
        {
            return (field, names.Length == 0
                ? $"{field} is not a field of this request: it takes no fields."
                : $"{field} is not a field of this request: it takes {names} (names are case-sensitive).");
        }

        var kind = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        return (field, kind == typeof(bool) ? $"{field} must be true or false."
            : kind == typeof(string) ? $"{field} must be a string."
            : $"{field} has the wrong JSON type.");
    }

    /// <summary>The top-level property a JSON path names (<c>$.name</c>, <c>$.name[0]</c>, <c>$['odd name']</c>); null for the root.</summary>
    private static string? FieldOf(string? path)
    {
        if (path is null || path.Length <= 1 || path[0] != '$')
        {
            return null;
        }

        if (path.StartsWith("$['", StringComparison.Ordinal))
        {
            var end = path.IndexOf("']", 3, StringComparison.Ordinal);
            return end > 3 ? path[3..end] : null;
        }

        if (path[1] != '.')
        {
            return null;
        }

        var rest = path[2..];
        var stop = rest.IndexOfAny(['.', '[']);
        return stop < 0 ? rest : rest[..stop];
    }
}
